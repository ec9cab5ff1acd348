"""Workflow executions: v1 run, v3 initialise, get, cancel and results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import datetime
from typing import Any

from .._client import AnswerObserver, ApiRequest
from .._convert import unstructure
from .._launch import DEFAULT_LAUNCH_CONCURRENCY, LaunchBatch
from .._retry import PollPolicy, RetryMode
from .._transport import BodyTooLarge
from .._validate import (
    check_expires_at,
    check_id,
    check_mapping,
    check_optional_str,
    check_text,
    utc_now,
)
from .._wait import WaitBatch, check_concurrency, check_poll_policy, check_timeout
from .._wait import wait_for_completion as _wait_for_completion
from ..errors import InvalidResponseError, ResultDownloadError, ResultTooLargeError
from ..models import LaunchRequest, WorkflowExecution
from ._base import Resource

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "Workflows", "initialise_body"]

DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024


def initialise_body(request: LaunchRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON body of `POST /workflows`, after checking every argument."""
    check_text("workflow_definition_id", request.workflow_definition_id)
    check_text("locale", request.locale)
    if request.parameters is not None:
        check_mapping("parameters", request.parameters)
    if request.expires_at is not None:
        check_expires_at(request.expires_at, now=now or utc_now())
    if check_optional_str("record_id", request.record_id) is not None:
        check_text("record_id", request.record_id)
    # The converter writes camelCase, drops absent fields and sends `parameters` even when
    # empty, as the API requires; JSON-serialisability is checked by send(), before sending.
    body: dict[str, Any] = unstructure(request)
    return body


class Workflows(Resource):
    """Workflow executions."""

    async def run(
        self,
        *,
        workflow_definition_id: str,
        case_id: str,
        parameters_id: str | None = None,
    ) -> WorkflowExecution:
        """Start a v1 workflow for a case (`POST /workflows/run`)."""
        body = {
            "workflowDefinitionId": check_text("workflow_definition_id", workflow_definition_id),
            "caseId": check_text("case_id", case_id),
        }
        if parameters_id is not None:
            body["parametersId"] = check_text("parameters_id", parameters_id)
        request = ApiRequest(
            method="POST", path="/workflows/run", json=body, mode=RetryMode.CREATING
        )
        return await self._send_model(request, WorkflowExecution)

    async def initialise(
        self,
        *,
        workflow_definition_id: str,
        locale: str,
        parameters: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
        record_id: str | None = None,
    ) -> WorkflowExecution:
        """Start a v3 workflow execution (`POST /workflows`)."""
        launch = LaunchRequest(
            workflow_definition_id=workflow_definition_id,
            locale=locale,
            parameters=parameters,
            expires_at=expires_at,
            record_id=record_id,
        )
        return await self._initialise(initialise_body(launch))

    async def _initialise(
        self, body: Mapping[str, Any], on_answer: AnswerObserver | None = None
    ) -> WorkflowExecution:
        request = ApiRequest(
            method="POST",
            path="/workflows",
            json=body,
            mode=RetryMode.CREATING,
            on_answer=on_answer,
        )
        return await self._send_model(request, WorkflowExecution)

    def launch_many(
        self,
        requests: Iterable[LaunchRequest] | AsyncIterable[LaunchRequest],
        *,
        concurrency: int = DEFAULT_LAUNCH_CONCURRENCY,
    ) -> LaunchBatch:
        """Launch many executions; iterate the result for one `LaunchOutcome` per request.

        At most `concurrency` launches are in flight, fewer for a while after a 429. A
        request that fails validation or meets an error becomes an outcome with `.error`;
        the others go on. The input is read lazily, as launch slots free up.

        >>> async for outcome in tl.workflows.launch_many(requests, concurrency=20):
        ...     print(outcome.index, outcome.execution or outcome.error)
        """
        return LaunchBatch(
            requests,
            concurrency=concurrency,
            build_body=initialise_body,
            launch=self._initialise,
            max_pause=self._client.retry_policy.max_retry_after,
        )

    async def get(self, execution_id: str) -> WorkflowExecution:
        """The execution as it is now (`GET /workflows/{id}`)."""
        path = f"/workflows/{check_id('execution_id', execution_id)}"
        return await self._send_model(ApiRequest(method="GET", path=path), WorkflowExecution)

    async def cancel(self, execution_id: str) -> None:
        """Cancel a running execution (`POST /workflows/{id}/cancel`); harmless to repeat."""
        path = f"/workflows/{check_id('execution_id', execution_id)}/cancel"
        await self._client.send(ApiRequest(method="POST", path=path, mode=RetryMode.IDEMPOTENT))

    async def wait_for_completion(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> WorkflowExecution:
        """Poll until the execution is final and return it (FAILED, EXPIRED... included).

        `timeout` (seconds) covers the whole wait, retries of failed checks included, and
        raises `WaitTimeoutError` (with `.last`) when it runs out. A webhook handled by
        `tl.webhooks.handle` ends the sleep between checks early.
        """
        return await _wait_for_completion(self._client, execution_id, timeout=timeout, poll=poll)

    def wait_many(
        self,
        execution_ids: Iterable[str],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        concurrency: int | None = None,
    ) -> WaitBatch:
        """Wait for many executions; iterate the result for each one as it finishes.

        Each id gets its own `wait_for_completion(id, timeout=..., poll=...)`, at most
        `concurrency` of them at a time (None: all at once; a wait costs one small GET per
        poll interval). The first failing wait (e.g. `WaitTimeoutError`, `NotFoundError`)
        cancels the others and is raised from the loop.

        >>> async for execution in tl.workflows.wait_many(ids, timeout=600):
        ...     print(execution.id, execution.status)
        """
        budget = check_timeout(timeout)
        policy = check_poll_policy(poll)
        limit = check_concurrency(concurrency, allow_none=True)

        async def wait(execution_id: str) -> WorkflowExecution:
            return await _wait_for_completion(
                self._client, execution_id, timeout=budget, poll=policy
            )

        return WaitBatch(execution_ids, wait, concurrency=limit)

    async def get_result(
        self, execution_id: str, *, max_bytes: int = DEFAULT_MAX_RESULT_BYTES
    ) -> Any:
        """The execution's result as parsed JSON, refusing results above `max_bytes`."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        path = f"/workflows/{check_id('execution_id', execution_id)}/result"
        request = ApiRequest(method="GET", path=path, max_body=max_bytes)
        try:
            response = await self._client.send(request)
        except BodyTooLarge as exc:
            raise _too_large(execution_id, exc.size, max_bytes) from None
        try:
            data = json.loads(response.body)
        except (ValueError, RecursionError) as exc:
            raise InvalidResponseError(f"GET {path} answered with a body that is not JSON") from exc
        if _is_redirect(data):
            raise ResultDownloadError(
                "the result is stored as a large object behind a pre-signed link, "
                "which this version cannot fetch yet"
            )
        return data


def _is_redirect(data: Any) -> bool:
    return isinstance(data, dict) and len(data) == 1 and isinstance(data.get("$redirect"), str)


def _too_large(execution_id: str, size: int | None, limit: int) -> ResultTooLargeError:
    what = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return ResultTooLargeError(
        f"the result of {execution_id} is {what}, above max_bytes={limit}; use "
        "tl.workflows.stream_result() or tl.workflows.download_result() for large results",
        size=size,
        limit=limit,
    )
