"""Group commit: concurrent operations share a batch, run off the loop, and survive cancels."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import pytest

from transactionlink_async._threads import start
from transactionlink_async.journal._group import GroupCommit, Outcome

pytestmark = pytest.mark.anyio


class Recorder:
    """A run_batch that records each batch's size and thread, and can be held."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.threads: set[int] = set()
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def __call__(self, ops: Sequence[Callable[[], Any]]) -> list[Outcome]:
        self.entered.set()
        assert self.hold.wait(10)
        self.batches.append(len(ops))
        self.threads.add(threading.get_ident())
        outcomes: list[Outcome] = []
        for op in ops:
            try:
                outcomes.append((True, op()))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes


def in_thread(
    run_batch: Callable[[Sequence[Callable[[], Any]]], list[Outcome]],
) -> GroupCommit[Any]:
    return GroupCommit(functools.partial(start, run_batch))


def identity(value: int) -> int:
    return value


async def until(event: threading.Event) -> None:
    with anyio.fail_after(5):
        while not event.is_set():  # noqa: ASYNC110 - a worker thread sets it
            await anyio.sleep(0.002)


async def test_operations_submitted_together_share_batches_off_the_loop() -> None:
    recorder = Recorder()
    group = in_thread(recorder)
    recorder.hold.clear()
    first = asyncio.ensure_future(group.submit(lambda: "first"))
    await until(recorder.entered)
    rest = [asyncio.ensure_future(group.submit(functools.partial(identity, n))) for n in range(100)]
    await asyncio.sleep(0)
    recorder.hold.set()
    assert await first == "first"
    assert await asyncio.gather(*rest) == list(range(100))
    # One batch held the first; the hundred submitted meanwhile went together.
    assert recorder.batches == [1, 100]
    assert threading.get_ident() not in recorder.threads


async def test_an_operation_error_reaches_only_its_submitter() -> None:
    group = in_thread(Recorder())

    def fail() -> None:
        raise ValueError("refused")

    outcomes = await asyncio.gather(
        group.submit(lambda: 1),
        group.submit(fail),
        group.submit(lambda: 3),
        return_exceptions=True,
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 3


async def test_a_batch_failure_reaches_every_submitter_and_the_next_batch_runs() -> None:
    recorder = Recorder()
    recorder.hold.clear()
    failing = {2}

    def run_batch(ops: Sequence[Callable[[], Any]]) -> list[Outcome]:
        outcomes = recorder(ops)
        if len(recorder.batches) in failing:
            raise OSError("disk I/O error")
        return outcomes

    group = in_thread(run_batch)
    first = asyncio.ensure_future(group.submit(lambda: 1))
    await until(recorder.entered)
    second = [asyncio.ensure_future(group.submit(lambda: 2)) for _ in range(3)]
    await asyncio.sleep(0)
    recorder.hold.set()
    assert await first == 1
    outcomes = await asyncio.gather(*second, return_exceptions=True)
    assert recorder.batches == [1, 3]
    assert all(isinstance(outcome, OSError) for outcome in outcomes)
    # Each caller its own error object: a shared one would gather every caller's traceback.
    assert len({id(outcome) for outcome in outcomes}) == 3
    assert await group.submit(lambda: 5) == 5


async def test_a_cancelled_submitter_waits_for_its_batch_then_undoes_it() -> None:
    recorder = Recorder()
    group = in_thread(recorder)
    recorder.hold.clear()
    done: list[str] = []

    def claim() -> str:
        done.append("claimed")
        return "won"

    def undo(value: str) -> Callable[[], object]:
        assert value == "won"
        return lambda: done.append("released")

    task = asyncio.ensure_future(group.submit(claim, undo=undo))
    await until(recorder.entered)
    task.cancel()
    await asyncio.sleep(0.01)
    assert not task.done(), "a cancelled submitter must wait for the batch it is in"
    recorder.hold.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == ["claimed", "released"]


async def test_drain_waits_for_everything_submitted() -> None:
    recorder = Recorder()
    group = in_thread(recorder)
    recorder.hold.clear()
    tasks = [asyncio.ensure_future(group.submit(functools.partial(identity, n))) for n in range(5)]
    await until(recorder.entered)
    drained = asyncio.ensure_future(group.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    recorder.hold.set()
    await drained
    assert all(task.done() for task in tasks)
    assert sum(recorder.batches) == 5
