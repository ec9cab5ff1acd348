"""Waits on the client's one scheduler: no task or timer per idle wait, a cap on checks in
flight, deadlines kept under load, and a close that ends every wait at once."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from transactionlink_async import (
    ClientClosedError,
    OrganizationToken,
    PollPolicy,
    RetryPolicy,
    TransactionLink,
    WaitTimeoutError,
    WorkflowStatus,
)
from transactionlink_async._batches.schedule import PollScheduler
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

# Wake-ups below would otherwise stretch later waits to the webhooks' safety net.
QUICK = PollPolicy(initial=0.01, multiplier=1.0, maximum=0.01, jitter=0.0, webhooks=False)
IDLE = PollPolicy(initial=3600)


def client(fake: FakeTransactionLink, **options: Any) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        retry=RetryPolicy(backoff_base=0.01, backoff_cap=0.02),
        **options,
    )


@pytest.fixture
async def tl(fake: FakeTransactionLink) -> AsyncIterator[TransactionLink]:
    async with client(fake) as opened:
        yield opened


async def running(fake: FakeTransactionLink, tl: TransactionLink) -> str:
    fake.define_workflow("never", statuses=("RUNNING",))
    return (await tl.workflows.initialise(workflow_definition_id="never", locale="en")).id


async def test_idle_waits_start_no_task_and_share_one_timer(
    fake: FakeTransactionLink, tl: TransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    timers: list[Any] = []
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        timers.append(callback)
        return call_at(when, callback, *args, **kw)

    tasks_before = len(asyncio.all_tasks())
    monkeypatch.setattr(loop, "call_at", counting)
    waits = [
        asyncio.ensure_future(tl.workflows.wait_for_completion(f"idle-{n}", poll=IDLE))
        for n in range(500)
    ]
    for _ in range(5):
        await asyncio.sleep(0)  # every wait runs to its sleep; no timer of the test's own
    monkeypatch.undo()
    # The callers' own tasks, and nothing else: no poller task, no timer per wait; the
    # scheduler's one timer is moved when an earlier sleep comes, never duplicated.
    assert len(asyncio.all_tasks()) == tasks_before + len(waits)
    assert all(isinstance(getattr(t, "__self__", None), PollScheduler) for t in timers)
    assert 1 <= len(timers) < 50
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert all(tl._handle.wakeups.waiting(f"idle-{n}") == 0 for n in range(500))
    assert fake.count("GET", "/workflows/*") == 0


@pytest.mark.skipif(sys.version_info < (3, 11), reason="coroutines hold their frames from 3.11")
async def test_an_idle_wait_holds_under_1850_bytes(tl: TransactionLink) -> None:
    # Python's own allocations, counted by tracemalloc: what 100,000 waits cost is this
    # times 100,000, the caller's task and its coroutine included (about 1,790 bytes on
    # 3.11, 1,720 on 3.13). Nothing per wait beyond the scheduler's entry and its future:
    # a registration of its own would add about 100.
    waits = 5_000
    warm = asyncio.ensure_future(tl.workflows.wait_for_completion("warm", poll=IDLE))
    await asyncio.sleep(0.01)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        tasks = [
            asyncio.ensure_future(tl.workflows.wait_for_completion(f"idle-{n}", poll=IDLE))
            for n in range(waits)
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        gc.collect()
        grown = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "lineno"))
    finally:
        tracemalloc.stop()
    for task in [*tasks, warm]:
        task.cancel()
    await asyncio.gather(*tasks, warm, return_exceptions=True)
    assert grown / waits < 1850


async def test_checks_in_flight_never_exceed_the_pool(fake: FakeTransactionLink) -> None:
    fake.define_workflow("two", statuses=("RUNNING", "COMPLETED"))
    async with client(fake, max_connections=3) as tl:
        ids = [
            (await tl.workflows.initialise(workflow_definition_id="two", locale="en")).id
            for _ in range(20)
        ]
        fake.inject("GET", "/workflows/*", delay=0.02, times=None)
        done = await asyncio.wait_for(
            asyncio.gather(*(tl.workflows.wait_for_completion(i, poll=QUICK) for i in ids)), 10
        )
    assert {e.status for e in done} == {WorkflowStatus.COMPLETED}
    assert fake.max_in_flight("GET", "/workflows/*") == 3


async def test_a_deadline_is_kept_while_every_check_slot_is_busy(
    fake: FakeTransactionLink,
) -> None:
    async with client(fake, max_connections=1) as tl:
        stuck, other = await running(fake, tl), await running(fake, tl)
        fake.inject("GET", f"/workflows/{stuck}", delay=30)
        hog = asyncio.ensure_future(tl.workflows.wait_for_completion(stuck, poll=QUICK))
        await asyncio.sleep(0.1)  # its check holds the only slot
        began = time.monotonic()
        with pytest.raises(WaitTimeoutError):
            await tl.workflows.wait_for_completion(other, timeout=0.3, poll=QUICK)
        assert 0.27 <= time.monotonic() - began <= 0.45
        hog.cancel()
        await asyncio.gather(hog, return_exceptions=True)
    assert fake.count("GET", f"/workflows/{other}") == 0


async def test_a_wait_cancelled_as_its_turn_comes_gives_the_slot_back(
    fake: FakeTransactionLink,
) -> None:
    async with client(fake, max_connections=1) as tl:
        first, second = await running(fake, tl), await running(fake, tl)
        victim = asyncio.ensure_future(
            tl.workflows.wait_for_completion(first, poll=PollPolicy(initial=30))
        )
        await asyncio.sleep(0.05)
        # The wake-up grants the slot, and the cancel lands before the task runs again.
        tl._handle.wakeups.wake(first)
        victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await victim
        fake.set_status(second, "COMPLETED")
        done = await asyncio.wait_for(tl.workflows.wait_for_completion(second, poll=QUICK), 2)
    assert done.status is WorkflowStatus.COMPLETED
    assert fake.count("GET", f"/workflows/{first}") == 0


async def test_closing_the_client_ends_every_sleeping_wait_at_once(
    fake: FakeTransactionLink,
) -> None:
    tl = client(fake)
    execution_id = await running(fake, tl)
    waits = [
        asyncio.ensure_future(tl.workflows.wait_for_completion(execution_id, poll=IDLE))
        for _ in range(3)
    ]
    await asyncio.sleep(0.05)
    began = time.monotonic()
    await tl.aclose()
    for wait in waits:
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(wait, 1)
    assert time.monotonic() - began < 0.5
    assert tl._handle.wakeups.waiting(execution_id) == 0
    with pytest.raises(ClientClosedError):
        await tl.workflows.wait_for_completion(execution_id)


async def test_sleeping_waits_end_at_once_while_another_call_unwinds(
    fake: FakeTransactionLink,
) -> None:
    tl = client(fake)
    execution_id = await running(fake, tl)
    entered = asyncio.Event()

    async def slow_to_unwind() -> None:
        # A call whose cleanup takes a while, as a download removing its file does.
        with tl._lifecycle.in_flight():
            try:
                entered.set()
                await asyncio.sleep(100)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(1.0)

    call = asyncio.ensure_future(slow_to_unwind())
    await entered.wait()
    waits = [
        asyncio.ensure_future(tl.workflows.wait_for_completion(execution_id, poll=IDLE)),
        # Its timeout falls while the other call unwinds: the close still comes first.
        asyncio.ensure_future(
            tl.workflows.wait_for_completion(execution_id, poll=IDLE, timeout=0.5)
        ),
    ]
    await asyncio.sleep(0.1)
    began = time.monotonic()
    closing = asyncio.ensure_future(tl.aclose())
    for wait in waits:
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(wait, 2)
    assert time.monotonic() - began < 0.2
    await closing
    await asyncio.gather(call, return_exceptions=True)


async def test_a_retry_after_is_kept_to_the_moment_whatever_else_falls_due(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    asked = fake.create_execution(status="RUNNING")
    other = fake.create_execution(status="RUNNING")
    fake.inject("GET", f"/workflows/{asked}", retry_after=1, times=1)
    steady = PollPolicy(initial=0.05, multiplier=1.0, maximum=0.05, jitter=0.2, webhooks=False)
    waits = [asyncio.ensure_future(tl.workflows.wait_for_completion(asked, poll=steady))]
    while fake.count("GET", f"/workflows/{asked}") < 1:  # noqa: ASYNC110 - the fake counts
        await asyncio.sleep(0.001)
    answered = time.monotonic()
    # Polls of another wait fall due all through the second before the next check: any
    # of them could take that check along early, as they may take each other.
    every_tenth = PollPolicy(initial=0.1, multiplier=1.0, maximum=0.1, jitter=0.2, webhooks=False)
    waits.append(asyncio.ensure_future(tl.workflows.wait_for_completion(other, poll=every_tenth)))
    while fake.count("GET", f"/workflows/{asked}") < 2:  # noqa: ASYNC110 - the fake counts
        await asyncio.sleep(0.001)
    assert time.monotonic() - answered >= 0.99
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)


async def test_many_waits_on_one_execution_all_return(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await running(fake, tl)
    waits = [
        asyncio.ensure_future(tl.workflows.wait_for_completion(execution_id, poll=IDLE))
        for _ in range(5)
    ]
    await asyncio.sleep(0.05)
    fake.set_status(execution_id, "COMPLETED")
    assert tl._handle.wakeups.wake(execution_id) == 5
    done = await asyncio.wait_for(asyncio.gather(*waits), 2)
    assert {e.status for e in done} == {WorkflowStatus.COMPLETED}
    assert fake.count("GET", f"/workflows/{execution_id}") == 5
