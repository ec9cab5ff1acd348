"""wait_for_completion and wait_many over real sockets: schedule, deadline, wake-ups, scale."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from functools import partial
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import FAST_RETRY

from transactionlink_async import (
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    OrganizationToken,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    ServerError,
    TransactionLink,
    TransportError,
    WaitTimeoutError,
    WorkflowExecution,
    WorkflowStatus,
)
from transactionlink_async._batches.wait import check_timeout, is_transient
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

QUICK = PollPolicy(initial=0.01, multiplier=1.0, maximum=0.01, jitter=0.0)


async def start(tl: TransactionLink, definition: str = "def") -> WorkflowExecution:
    return await tl.workflows.initialise(workflow_definition_id=definition, locale="en")


def get_times(fake: FakeTransactionLink, execution_id: str) -> list[float]:
    return [e.started for e in fake.requests("GET", f"/workflows/{execution_id}")]


def assert_no_tasks_left() -> None:
    current = asyncio.current_task()
    ours = [
        t
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and "transactionlink_async/_" in repr(t.get_coro())
    ]
    assert not ours


# -- the pure parts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TransportError("x", request_sent=True), True),
        (InvalidResponseError("x"), False),
        (ServerError("x", status=503, method="GET", url="u"), True),
        (ServerError("x", status=500, method="GET", url="u"), True),
        (RateLimitError("x", status=429, method="GET", url="u"), True),
        (BadRequestError("x", status=408, method="GET", url="u"), True),
        (BadRequestError("x", status=400, method="GET", url="u"), False),
        (PermissionDeniedError("x", status=403, method="GET", url="u"), False),
        (NotFoundError("x", status=404, method="GET", url="u"), False),
        (ValueError("x"), False),
    ],
)
def test_which_failed_checks_are_retried(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


@given(st.floats(allow_nan=True) | st.integers())
def test_timeout_is_none_or_a_positive_number(value: float) -> None:
    if value > 0:
        assert check_timeout(value) == float(value)
    else:
        with pytest.raises(ValueError, match="timeout"):
            check_timeout(value)


@pytest.mark.parametrize("value", [True, "10", [1]])
def test_timeout_of_the_wrong_type_is_refused(value: Any) -> None:
    with pytest.raises(TypeError, match="timeout"):
        check_timeout(value)


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"execution_id": ""}, ValueError),
        ({"execution_id": "a/b"}, ValueError),
        ({"execution_id": 5}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": "5"}, TypeError),
        ({"poll": 1.0}, TypeError),
    ],
)
async def test_bad_arguments_send_nothing(
    fake: FakeTransactionLink, tl: TransactionLink, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    arguments: dict[str, Any] = {"execution_id": "abc", **kwargs}
    with pytest.raises(error):
        await tl.workflows.wait_for_completion(**arguments)
    with pytest.raises(error):
        tl.workflows.wait_many([arguments.pop("execution_id")], **arguments)
    assert fake.journal == []


# -- the schedule ----------------------------------------------------------------------------


async def test_polls_until_final_through_awaiting_paused_and_unknown_statuses(
    fake: FakeTransactionLink, tl: TransactionLink, caplog: pytest.LogCaptureFixture
) -> None:
    mystery = f"MYSTERY_{uuid.uuid4().hex[:8]}"  # logging is once per process per value
    fake.define_workflow(
        "slow", statuses=("RUNNING", "AWAITING", "PAUSED", mystery, mystery, "COMPLETED")
    )
    first, second = await start(tl, "slow"), await start(tl, "slow")
    with caplog.at_level(logging.WARNING, logger="transactionlink_async"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(tl.workflows.wait_for_completion, first.id, poll=QUICK))
            tg.start_soon(partial(tl.workflows.wait_for_completion, second.id, poll=QUICK))
        done = await tl.workflows.get(first.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert fake.count("GET", "/workflows/*") == 13
    unknown = [r for r in caplog.records if mystery in r.getMessage()]
    assert len(unknown) == 1  # two waits, one warning
    assert unknown[0].levelno == logging.WARNING


@pytest.mark.parametrize("final", ["FAILED", "EXPIRED", "CANCELLED", "TIMEOUT", "TERMINATED"])
async def test_failure_statuses_are_results(
    fake: FakeTransactionLink, tl: TransactionLink, final: str
) -> None:
    fake.define_workflow("ends", statuses=("RUNNING", final))
    execution = await start(tl, "ends")
    done = await tl.workflows.wait_for_completion(execution.id, poll=QUICK)
    assert done.status == final
    assert done.is_final


async def test_first_poll_after_initial_then_growing(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("four", statuses=("RUNNING", "RUNNING", "RUNNING", "COMPLETED"))
    execution = await start(tl, "four")
    policy = PollPolicy(initial=0.05, multiplier=2.0, maximum=10, jitter=0.0)
    began = time.monotonic()
    await tl.workflows.wait_for_completion(execution.id, poll=policy)
    times = get_times(fake, execution.id)
    gaps = [b - a for a, b in zip([began, *times], times, strict=False)]
    # 0.05 before the first poll, then 0.1, 0.2, 0.4 (plus request time).
    for gap, expected in zip(gaps, [0.05, 0.1, 0.2, 0.4], strict=True):
        assert expected <= gap < expected + 0.05


async def test_a_retry_after_on_a_status_answer_wins(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("two", statuses=("RUNNING", "COMPLETED"))
    execution = await start(tl, "two")
    fake.inject("GET", "/workflows/*", retry_after="0.3")
    await tl.workflows.wait_for_completion(execution.id, poll=QUICK)
    first, second = get_times(fake, execution.id)
    assert second - first >= 0.3


async def test_500_concurrent_waits_cost_only_their_polls(fake: FakeTransactionLink) -> None:
    fake.define_workflow("three", statuses=("RUNNING", "AWAITING", "COMPLETED"))
    policy = PollPolicy(initial=0.01, multiplier=1.5, maximum=0.05)
    async with TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    ) as tl:
        executions = [
            await tl.workflows._initialise(
                {"workflowDefinitionId": "three", "locale": "en", "parameters": {}}
            )
            for _ in range(500)
        ]
        done: list[WorkflowExecution] = []

        async def wait(execution_id: str) -> None:
            done.append(await tl.workflows.wait_for_completion(execution_id, poll=policy))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for execution in executions:
                    tg.start_soon(wait, execution.id)
    assert len(done) == 500
    assert {e.status for e in done} == {WorkflowStatus.COMPLETED}
    per_execution = Counter(e.path for e in fake.requests("GET", "/workflows/*"))
    assert len(per_execution) == 500
    assert max(per_execution.values()) <= 3 + 2


# -- the deadline ----------------------------------------------------------------------------


async def test_timeout_raises_with_the_last_execution_seen(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("never", statuses=("RUNNING",))
    execution = await start(tl, "never")
    began = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        await tl.workflows.wait_for_completion(
            execution.id, timeout=0.5, poll=PollPolicy(initial=0.05, maximum=0.1)
        )
    elapsed = time.monotonic() - began
    assert 0.45 <= elapsed <= 0.55
    assert isinstance(info.value, TimeoutError)
    assert info.value.last is not None
    assert info.value.last.status is WorkflowStatus.RUNNING
    assert "0.5s" in str(info.value)
    assert "RUNNING" in str(info.value)


async def test_timeout_cuts_the_clients_own_retry_sleep(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    # The client would sleep 30 s before its retry; the wait's budget is 0.3 s.
    fake.inject("GET", "/workflows/*", status=503, retry_after="30", times=None)
    began = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        await tl.workflows.wait_for_completion(execution.id, timeout=0.3, poll=QUICK)
    assert 0.27 <= time.monotonic() - began <= 0.33
    assert info.value.last is None
    assert "no status seen yet" in str(info.value)


async def test_transient_failures_are_retried_within_the_budget(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("two", statuses=("RUNNING", "COMPLETED"))
    execution = await start(tl, "two")
    # Each failed check is retried by the client (4 attempts), then by the waiter.
    fake.inject("GET", "/workflows/*", status=503, times=6)
    fake.inject("GET", "/workflows/*", drop="before_body", times=2)
    done = await tl.workflows.wait_for_completion(execution.id, timeout=5, poll=QUICK)
    assert done.status is WorkflowStatus.COMPLETED
    assert fake.count("GET", "/workflows/*") == 6 + 2 + 2


async def test_a_long_rate_limit_pause_is_honoured_up_to_the_deadline(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    # Beyond max_retry_after the client raises at once; the waiter sleeps it instead.
    fake.inject("GET", "/workflows/*", status=429, retry_after="100")
    began = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        await tl.workflows.wait_for_completion(execution.id, timeout=0.3, poll=QUICK)
    assert 0.27 <= time.monotonic() - began <= 0.33
    assert fake.count("GET", "/workflows/*") == 1
    assert isinstance(info.value.__cause__, RateLimitError)


@pytest.mark.parametrize(
    ("status", "error"), [(403, PermissionDeniedError), (400, BadRequestError)]
)
async def test_refusals_end_the_wait(
    fake: FakeTransactionLink, tl: TransactionLink, status: int, error: type[Exception]
) -> None:
    execution = await start(tl)
    fake.inject("GET", "/workflows/*", status=status)
    with pytest.raises(error):
        await tl.workflows.wait_for_completion(execution.id, timeout=5, poll=QUICK)
    assert fake.count("GET", "/workflows/*") == 1


async def test_an_unknown_execution_ends_the_wait(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    with pytest.raises(NotFoundError):
        await tl.workflows.wait_for_completion("no-such-id", poll=QUICK)
    assert fake.count("GET", "/workflows/*") == 1


async def test_an_unreadable_answer_ends_the_wait(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    fake.inject("GET", "/workflows/*", status=200, body={"no": "status"})
    with pytest.raises(InvalidResponseError):
        await tl.workflows.wait_for_completion(execution.id, timeout=5, poll=QUICK)


# -- cancellation ----------------------------------------------------------------------------


async def assert_cancelled_promptly(task: asyncio.Task[Any]) -> None:
    assert not task.done()
    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - began < 0.1


async def test_cancelling_mid_sleep_is_prompt(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    task = asyncio.ensure_future(
        tl.workflows.wait_for_completion(execution.id, poll=PollPolicy(initial=30))
    )
    await asyncio.sleep(0.1)
    assert tl._handle.wakeups.waiting(execution.id) == 1
    await assert_cancelled_promptly(task)
    assert tl._handle.wakeups.waiting(execution.id) == 0
    assert fake.journal[-1].method == "POST"  # no poll was sent
    assert_no_tasks_left()


async def test_cancelling_mid_request_is_prompt(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    fake.inject("GET", "/workflows/*", delay=30)
    task = asyncio.ensure_future(tl.workflows.wait_for_completion(execution.id, poll=QUICK))
    await asyncio.sleep(0.2)
    assert fake.in_flight("GET", "/workflows/*") == 1
    await assert_cancelled_promptly(task)
    assert_no_tasks_left()
    await asyncio.sleep(0.05)
    assert fake.in_flight("GET", "/workflows/*") == 0  # the connection was let go


# -- wake-ups --------------------------------------------------------------------------------


async def test_a_wake_up_confirms_with_one_get_and_returns_when_final(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    task = asyncio.ensure_future(
        tl.workflows.wait_for_completion(execution.id, poll=PollPolicy(initial=30))
    )
    await asyncio.sleep(0.05)
    fake.set_status(execution.id, "COMPLETED")
    began = time.monotonic()
    assert tl._handle.wakeups.wake(execution.id) == 1
    done = await task
    assert time.monotonic() - began < 0.2
    assert done.status is WorkflowStatus.COMPLETED
    assert fake.count("GET", "/workflows/*") == 1


async def test_a_wake_up_for_a_running_execution_keeps_waiting(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    fake.set_status(execution.id, "RUNNING")
    task = asyncio.ensure_future(
        tl.workflows.wait_for_completion(execution.id, poll=PollPolicy(initial=30))
    )
    await asyncio.sleep(0.05)
    tl._handle.wakeups.wake(execution.id)
    assert await fake.next_request("GET", "/workflows/*", timeout=5) is not None  # it checks
    # ... once, finds RUNNING, and goes back to sleep: no second check comes.
    assert await fake.next_request("GET", "/workflows/*", timeout=0.3) is None
    assert not task.done()
    assert fake.count("GET", "/workflows/*") == 1  # the webhook's status is never trusted
    fake.set_status(execution.id, "FAILED")
    tl._handle.wakeups.wake(execution.id)
    assert (await task).status is WorkflowStatus.FAILED
    assert fake.count("GET", "/workflows/*") == 2


async def test_a_wake_up_during_a_check_is_not_lost(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution = await start(tl)
    fake.set_status(execution.id, "RUNNING")
    # The checks answer slowly; without wake-ups the wait would take 100 s.
    fake.inject("GET", "/workflows/*", delay=0.2, times=None)
    policy = PollPolicy(initial=100, jitter=0)
    task = asyncio.ensure_future(tl.workflows.wait_for_completion(execution.id, poll=policy))
    await asyncio.sleep(0.05)
    tl._handle.wakeups.wake(execution.id)  # a status update: the check says RUNNING
    await asyncio.sleep(0.1)
    assert fake.in_flight("GET", "/workflows/*") == 1
    fake.set_status(execution.id, "COMPLETED")
    tl._handle.wakeups.wake(execution.id)  # the completion, while that check is under way
    with anyio.fail_after(2):
        done = await task
    assert done.status is WorkflowStatus.COMPLETED
    assert fake.count("GET", "/workflows/*") == 2


# -- wait_many -------------------------------------------------------------------------------


async def test_wait_many_yields_in_completion_order(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("quick", statuses=("COMPLETED",))
    fake.define_workflow("slow", statuses=("RUNNING",) * 8 + ("FAILED",))
    slow = [(await start(tl, "slow")).id for _ in range(3)]
    quick = [(await start(tl, "quick")).id for _ in range(3)]
    seen = [e async for e in tl.workflows.wait_many(slow + quick, poll=QUICK)]
    assert [e.id for e in seen[:3]] != slow
    assert {e.id for e in seen[:3]} == set(quick)
    assert {e.id for e in seen[3:]} == set(slow)
    assert {e.status for e in seen[3:]} == {WorkflowStatus.FAILED}


async def test_wait_many_with_a_concurrency_limit(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    ids = [(await start(tl)).id for _ in range(12)]
    fake.inject("GET", "/workflows/*", delay=0.02, times=None)
    done = [e async for e in tl.workflows.wait_many(ids, poll=QUICK, concurrency=3)]
    assert sorted(e.id for e in done) == sorted(ids)
    assert fake.max_in_flight("GET", "/workflows/*") == 3


async def test_wait_many_raises_the_first_failure_and_stops_the_rest(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("never", statuses=("RUNNING",))
    fake.define_workflow("quick", statuses=("COMPLETED",))
    running = [(await start(tl, "never")).id for _ in range(5)]
    quick = (await start(tl, "quick")).id
    seen: list[WorkflowExecution] = []

    async def consume() -> None:
        policy = PollPolicy(initial=0.02, maximum=0.02)
        async for execution in tl.workflows.wait_many([*running, quick], poll=policy):
            seen.append(execution)
            fake.inject("GET", f"/workflows/{running[2]}", status=403)

    with pytest.raises(PermissionDeniedError):
        await consume()
    assert [e.id for e in seen] == [quick]
    # A GET already on the wire when the rest were cancelled may still land; then nothing.
    await asyncio.sleep(0.05)
    after = fake.count("GET", "/workflows/*")
    await asyncio.sleep(0.2)  # ten poll intervals: any surviving poller would show
    assert fake.count("GET", "/workflows/*") == after
    assert all(tl._handle.wakeups.waiting(i) == 0 for i in running)
    assert_no_tasks_left()


async def test_wait_many_timeout_is_per_execution(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("never", statuses=("RUNNING",))
    execution = await start(tl, "never")
    began = time.monotonic()
    with pytest.raises(WaitTimeoutError) as info:
        async for _ in tl.workflows.wait_many([execution.id], timeout=0.2, poll=QUICK):
            pass
    assert 0.18 <= time.monotonic() - began <= 0.3
    assert info.value.last is not None


@pytest.mark.parametrize("style", ["plain", "async with"])
async def test_breaking_out_of_wait_many_cancels_the_other_waits(
    fake: FakeTransactionLink, tl: TransactionLink, style: str
) -> None:
    fake.define_workflow("never", statuses=("RUNNING",))
    fake.define_workflow("quick", statuses=("COMPLETED",))
    ids = [(await start(tl, "never")).id for _ in range(20)] + [(await start(tl, "quick")).id]
    policy = PollPolicy(initial=0.01, multiplier=1, maximum=0.01)
    if style == "plain":
        async for _ in tl.workflows.wait_many(ids, poll=policy):
            break
    else:
        async with tl.workflows.wait_many(ids, poll=policy) as batch:
            async for _ in batch:
                break
    await asyncio.sleep(0.02)  # cancelled tasks need a turn of the loop to end
    after = fake.count("GET", "/workflows/*")
    await asyncio.sleep(0.1)
    assert fake.count("GET", "/workflows/*") == after
    assert all(tl._handle.wakeups.waiting(i) == 0 for i in ids)
    assert_no_tasks_left()


async def test_wait_many_of_nothing_ends_at_once(tl: TransactionLink) -> None:
    batch = tl.workflows.wait_many([])
    assert [e async for e in batch] == []
    assert batch.pending == 0


async def test_wait_many_refuses_a_single_str(tl: TransactionLink) -> None:
    with pytest.raises(TypeError, match="iterable of ids"):
        tl.workflows.wait_many("abc")


async def test_a_zero_retry_after_on_status_answers_does_not_spin(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.define_workflow("never", statuses=("RUNNING",))
    execution = await start(tl, "never")
    fake.inject("GET", f"/workflows/{execution.id}", retry_after="0", times=None)
    policy = PollPolicy(initial=0.1, multiplier=1.0, maximum=0.1, jitter=0.0)
    with pytest.raises(WaitTimeoutError):
        await tl.workflows.wait_for_completion(execution.id, timeout=0.55, poll=policy)
    assert fake.count("GET", f"/workflows/{execution.id}") <= 6
