"""The poll scheduler: one timer for every sleep, due order, a cap on checks, deadlines kept."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactionlink_async._batches.schedule import PollScheduler

pytestmark = pytest.mark.anyio


def now() -> float:
    return asyncio.get_running_loop().time()


def note(into: list[Any], what: Any, _: object) -> None:
    into.append(what)


async def test_sleeps_end_in_due_order() -> None:
    scheduler = PollScheduler(limit=10)
    start = now()
    order: list[int] = []
    futures = []
    for index, offset in enumerate([0.04, 0.01, 0.03, 0.02]):
        future = scheduler.sleep(start + offset)
        future.add_done_callback(partial(note, order, index))
        futures.append(future)
    assert await asyncio.wait_for(asyncio.gather(*futures), 1) == [True] * 4
    assert order == [1, 3, 2, 0]
    assert now() - start >= 0.04
    assert scheduler.busy == 4


async def test_many_sleeps_share_one_loop_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__self__", None) is scheduler:
            timers.append(when)
        return call_at(when, callback, *args, **kw)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    scheduler = PollScheduler(limit=1000)
    start = now()
    # 1000 sleeps due at 10 distinct times: how fast the loop runs cannot change the count.
    futures = [scheduler.sleep(start + 0.01 + (i // 100) / 1000) for i in range(1000)]
    assert len(timers) == 1  # armed for the earliest; later sleeps add no timer
    await asyncio.wait_for(asyncio.gather(*futures), 1)
    # Re-armed at most once per distinct due time that falls due, never per sleep.
    assert len(timers) <= 1 + 10


async def test_sleeps_due_a_little_later_come_along_in_the_same_turn() -> None:
    scheduler = PollScheduler(limit=10)
    sleep = partial(scheduler.sleep, early_share=0.1)
    start = now()
    first = sleep(start + 0.5)
    # Due 20 ms and 40 ms later, each at most a tenth of its length early: both come along.
    along = [sleep(start + 0.52), sleep(start + 0.54)]
    # Would be 70 ms early, more than a tenth of its 0.57 s.
    too_early = sleep(start + 0.57)
    assert await asyncio.wait_for(first, 2) is True
    assert [future.done() for future in along] == [True, True]
    assert now() < start + 0.52
    assert not too_early.done()
    assert await asyncio.wait_for(too_early, 2) is True
    assert now() >= start + 0.57 - 0.057


async def test_a_sleep_without_a_share_and_a_deadline_are_never_early() -> None:
    scheduler = PollScheduler(limit=10)
    start = now()
    first = scheduler.sleep(start + 0.3, early_share=0.1)
    exact = scheduler.sleep(start + 0.31)  # a Retry-After, say
    deadline = scheduler.sleep(start + 0.305, slot=False, early_share=0.1)
    also = scheduler.sleep(start + 0.31, early_share=0.1)  # behind them: waits its turn
    await asyncio.wait_for(first, 2)
    assert not exact.done()
    assert not deadline.done()
    assert not also.done()
    assert await asyncio.wait_for(deadline, 2) is False
    assert now() >= start + 0.305
    assert await asyncio.wait_for(exact, 2) is True
    assert now() >= start + 0.31


async def test_coming_early_never_overtakes_a_sleep_due_before() -> None:
    scheduler = PollScheduler(limit=1)
    start = now()
    granted: list[str] = []
    first = scheduler.sleep(start + 0.6)
    long = scheduler.sleep(start + 0.65, early_share=0.1)  # may come from 0.585 on
    long.add_done_callback(partial(note, granted, "due 0.65"))
    short = scheduler.sleep(start + 0.63, early_share=0.01)  # only from 0.6237 on
    short.add_done_callback(partial(note, granted, "due 0.63"))
    await asyncio.wait_for(first, 2)
    # Each time the one slot comes free it goes to the next in due order, however early
    # the later one may come.
    scheduler.done()
    await asyncio.wait_for(asyncio.wait([long, short], return_when="FIRST_COMPLETED"), 2)
    scheduler.done()
    await asyncio.wait_for(asyncio.gather(long, short), 2)
    await asyncio.sleep(0)  # the callbacks noting each grant have run
    assert granted == ["due 0.63", "due 0.65"]


async def test_no_sleep_comes_more_than_the_slack_early() -> None:
    scheduler = PollScheduler(limit=10)
    start = now()
    # A tenth of 3 s would be 0.3 s; the slack is 0.25 s, so this one is not due at 2.72 s.
    far = scheduler.sleep(start + 3.0, early_share=0.1)
    first = scheduler.sleep(start + 2.72)
    await asyncio.wait_for(first, 5)
    assert not far.done()
    assert await asyncio.wait_for(far, 2) is True
    assert now() >= start + 2.75


async def test_at_most_limit_sleepers_hold_a_slot_and_done_passes_it_on() -> None:
    scheduler = PollScheduler(limit=2)
    futures = [scheduler.sleep(now()) for _ in range(5)]
    await asyncio.wait_for(asyncio.gather(*futures[:2]), 1)
    await asyncio.sleep(0.01)
    assert [f.done() for f in futures] == [True, True, False, False, False]
    scheduler.done()
    await asyncio.wait_for(futures[2], 1)
    assert not futures[3].done()
    assert scheduler.busy == 2


async def test_a_cancelled_sleep_takes_no_slot() -> None:
    scheduler = PollScheduler(limit=1)
    first, second, third = (scheduler.sleep(now() + 0.01) for _ in range(3))
    second.cancel()
    await asyncio.wait_for(first, 1)
    scheduler.done()
    assert await asyncio.wait_for(third, 1) is True
    assert scheduler.busy == 1


async def test_a_deadline_is_kept_while_every_slot_is_busy() -> None:
    scheduler = PollScheduler(limit=1)
    holder = scheduler.sleep(now())
    await asyncio.wait_for(holder, 1)  # the one slot is taken and never given back
    start = now()
    queued = scheduler.sleep(start, deadline=start + 0.05)
    assert await asyncio.wait_for(queued, 1) is False
    assert 0.04 <= now() - start < 0.5


async def test_a_sleep_without_a_slot_ends_at_its_time_whatever_is_busy() -> None:
    scheduler = PollScheduler(limit=1)
    await asyncio.wait_for(scheduler.sleep(now()), 1)
    assert await asyncio.wait_for(scheduler.sleep(now() + 0.01, slot=False), 1) is False
    assert scheduler.busy == 1


async def test_wake_makes_a_sleep_due_now() -> None:
    scheduler = PollScheduler(limit=1)
    start = now()
    future = scheduler.sleep(start + 30)
    scheduler.wake(future)
    assert await asyncio.wait_for(future, 1) is True
    assert now() - start < 0.5
    scheduler.wake(future)  # waking a finished sleep does nothing
    assert scheduler.busy == 1


async def test_close_fails_every_sleep_and_the_later_ones() -> None:
    scheduler = PollScheduler(limit=1)
    holder = scheduler.sleep(now())
    await asyncio.wait_for(holder, 1)
    queued, far = scheduler.sleep(now()), scheduler.sleep(now() + 30)
    error = RuntimeError("closed")
    scheduler.close(error)
    for future in (queued, far, scheduler.sleep(now())):
        with pytest.raises(RuntimeError, match="closed"):
            await future
    assert scheduler.sleeping == 0


async def test_cancelled_sleeps_are_dropped_from_the_heap() -> None:
    scheduler = PollScheduler(limit=1)
    for _ in range(3000):
        scheduler.sleep(now() + 3600).cancel()
    # Compacted as they pile up: a cancelled wait costs nothing for long.
    assert scheduler.sleeping < 1100


async def test_a_scheduler_is_bound_to_its_first_loop() -> None:
    scheduler = PollScheduler(limit=1)
    scheduler.sleep(now()).cancel()

    async def elsewhere() -> None:
        scheduler.sleep(0.0)

    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.get_running_loop().run_in_executor(None, asyncio.run, elsewhere())


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        PollScheduler(limit=0)


@settings(max_examples=25, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=30),
    limit=st.integers(min_value=1, max_value=4),
)
def test_slots_go_in_due_order_and_never_exceed_the_limit(offsets: list[int], limit: int) -> None:
    async def scenario() -> None:
        scheduler = PollScheduler(limit=limit)
        start = now()
        granted: list[tuple[float, int]] = []
        futures = []
        for index, offset in enumerate(offsets):
            when = start + offset / 1000
            future = scheduler.sleep(when)
            future.add_done_callback(partial(note, granted, (when, index)))
            futures.append(future)
        while len(granted) < len(offsets):
            await asyncio.sleep(0.002)
            assert scheduler.busy <= limit
            if scheduler.busy == limit or len(granted) == len(offsets):
                for _ in range(scheduler.busy):
                    scheduler.done()
        assert granted == sorted(granted)

    asyncio.run(asyncio.wait_for(scenario(), 10))
