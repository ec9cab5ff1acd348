# pyright: strict
"""The public surface as users' type checkers see it: `mypy` and `pyright` check this file.

Nothing here runs; each `assert_type` fails the check when a public type drifts, and the
`ignore` comments fail it (as unused) when a mistake stops being caught.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from typing_extensions import assert_type

from transactionlink_async import (
    APIResponse,
    Cases,
    ClientClosedError,
    DownloadedResult,
    LaunchOutcome,
    LaunchRequest,
    ParametersResource,
    ProgressCallback,
    ResponseEvent,
    ResultStream,
    RetryPolicy,
    Timeouts,
    TransactionLink,
    UnknownStatus,
    WaitTimeoutError,
    WebhookEvent,
    Webhooks,
    WorkflowExecution,
    Workflows,
    WorkflowStatus,
)
from transactionlink_async.fastapi import TransactionLinkDep, transactionlink_lifespan
from transactionlink_async.testing import FakeTransactionLink


async def resources(tl: TransactionLink) -> None:
    assert_type(tl.workflows, Workflows)
    assert_type(tl.cases, Cases)
    assert_type(tl.parameters, ParametersResource)
    assert_type(tl.webhooks, Webhooks)
    execution = await tl.workflows.get("e-1")
    assert_type(execution, WorkflowExecution)
    assert_type(await tl.workflows.cancel("e-1"), None)
    assert_type(await tl.workflows.get_result("e-1"), Any)
    async with tl.workflows.stream_result("e-1") as stream:
        assert_type(stream, ResultStream)

    def show(done: int, total: int | None) -> None: ...

    progress: ProgressCallback = show
    saved = await tl.workflows.download_result("e-1", "r.json", on_progress=progress)
    assert_type(saved, DownloadedResult)
    async for outcome in tl.workflows.launch_many(
        [LaunchRequest(workflow_definition_id="kyc", locale="en")]
    ):
        assert_type(outcome, LaunchOutcome)
    async for done in tl.workflows.wait_many(["e-1"]):
        assert_type(done, WorkflowExecution)
    assert_type(await tl.webhooks.verify({}, b"{}"), WebhookEvent)


def statuses(execution: WorkflowExecution) -> str:
    status = execution.status
    assert_type(status, WorkflowStatus | UnknownStatus)
    if isinstance(status, WorkflowStatus):
        assert_type(status, WorkflowStatus)
    else:
        assert_type(status, UnknownStatus)
    match status:
        case WorkflowStatus.COMPLETED:
            return "done"
        case UnknownStatus():
            return f"unknown {status}"
        case _:
            return str(status)


async def errors(tl: TransactionLink) -> None:
    try:
        await tl.workflows.wait_for_completion("e-1", timeout=5)
    except WaitTimeoutError as exc:
        assert_type(exc.last, WorkflowExecution | None)
    except ClientClosedError:
        pass


async def per_call_options_and_raw_answers(tl: TransactionLink) -> None:
    view = tl.with_options(retry=RetryPolicy.no_retries(), timeouts=Timeouts(read=5.0))
    assert_type(view, TransactionLink)
    answer = await view.with_raw_response.workflows.get("e-1")
    assert_type(answer, APIResponse[WorkflowExecution])
    assert_type(answer.status, int)
    assert_type(answer.headers, Mapping[str, str])
    assert_type(answer.parsed, WorkflowExecution)
    assert_type((await tl.with_raw_response.workflows.cancel("e-1")).parsed, None)


def hooks(tl: TransactionLink) -> None:
    def count(event: ResponseEvent) -> None:
        assert_type(event.status, int | None)

    assert_type(tl.events.on_response(count), Callable[[], None])


def configuration() -> None:
    TransactionLink.from_env(max_connections=10, retry=RetryPolicy(max_attempts=2))
    typo = TransactionLink.from_env
    typo(max_conections=10)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    typo(max_connections="10")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


async def fastapi_route(tl: TransactionLinkDep) -> None:
    assert_type(tl, TransactionLink)
    lifespan = transactionlink_lifespan()
    assert_type(lifespan, Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]])


async def testing_kit(fake: FakeTransactionLink) -> None:
    assert_type(fake.base_url, str)
