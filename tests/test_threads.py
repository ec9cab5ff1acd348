"""Blocking work in threads: waited for to its end through cancels, which are never lost."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

import anyio
import pytest

from transactionlink_async._threads import run_blocking

pytestmark = pytest.mark.anyio


def held(release: threading.Event, entered: threading.Event, outcome: Any) -> Any:
    entered.set()
    assert release.wait(10)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def until(event: threading.Event) -> None:
    with anyio.fail_after(5):
        while not event.is_set():  # noqa: ASYNC110 - a thread sets it
            await anyio.sleep(0.005)


async def test_the_result_and_the_error_come_back() -> None:
    assert await run_blocking(sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        await run_blocking(divmod, 1, 0)


async def test_a_cancel_is_raised_after_the_job_even_when_the_job_then_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release, entered = threading.Event(), threading.Event()
    task = asyncio.create_task(run_blocking(held, release, entered, OSError("disk full")))
    await until(entered)
    task.cancel()
    await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.sleep(0.02)
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task  # the cancel, not the OSError: a cancel is never turned into an error
    gc.collect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_undo_removes_what_a_cancelled_job_made() -> None:
    release, entered = threading.Event(), threading.Event()
    undone: list[str] = []
    task = asyncio.create_task(run_blocking(held, release, entered, "made", undo=undone.append))
    await until(entered)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert undone == ["made"]
    assert await run_blocking(str, 1, undo=undone.append) == "1"
    assert undone == ["made"]  # only a cancelled caller undoes


async def test_an_anyio_cancel_does_not_spin_while_the_thread_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # anyio repeats a cancel on every loop turn until the task ends: without a shield,
    # each one would wake the waiting task, thousands of times per second.
    release, entered = threading.Event(), threading.Event()
    wait = asyncio.wait
    wakeups = 0

    async def counting_wait(*args: Any, **kwargs: Any) -> Any:
        nonlocal wakeups
        wakeups += 1
        return await wait(*args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counting_wait)
    scope = anyio.CancelScope()

    async def cancel_soon() -> None:
        await until(entered)
        scope.cancel()
        await asyncio.sleep(0.1)
        release.set()

    canceller = asyncio.create_task(cancel_soon())
    with scope:
        await run_blocking(held, release, entered, None)
    await canceller
    assert scope.cancelled_caught
    assert release.is_set()  # the job was waited for
    assert wakeups <= 3
