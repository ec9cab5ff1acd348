"""Blocking work in worker threads: waited for to its end, or left to finish on its own."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import anyio

__all__ = ["compute", "run_blocking", "settle", "start"]

T = TypeVar("T")


def start(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` started in a worker thread; pass the future to `settle` before using it."""
    return asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


async def compute(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread, for pure work with nothing to clean up after it.

    A cancelled caller goes on at once; the thread finishes on its own, its result
    dropped. asyncio's executor, not anyio's threads: the first use of those imports
    anyio's event-loop backend, about 50 ms on the loop in a process that had not.
    """
    return await start(fn, *args)


async def settle(jobs: Collection[asyncio.Future[Any]]) -> None:
    """Wait until every job has ended; a cancel is raised only after that.

    A thread cannot be stopped: a caller that went on while one still ran would clean up
    what the thread is using (close a file descriptor mid-fsync, then the thread closes a
    number the application has reused; remove a file the thread then renames into place).
    So cancels, however many and from asyncio or anyio, wait for the jobs first. The jobs'
    outcomes are left to the caller, or marked seen when a cancel is raised instead.
    """
    if not jobs:
        return
    try:
        # asyncio.wait never cancels what it waits on, and never raises the jobs' errors.
        await asyncio.wait(jobs)
    except asyncio.CancelledError:
        # anyio re-delivers a cancel on every turn of the loop to a task still running;
        # a shielded scope stops that from becoming a busy loop while the thread finishes.
        with anyio.CancelScope(shield=True):
            while not all(job.done() for job in jobs):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait(jobs)
        for job in jobs:
            if not job.cancelled():
                job.exception()  # no "exception was never retrieved" for an outcome dropped
        raise


async def run_blocking(
    fn: Callable[..., T], *args: Any, undo: Callable[[T], object] | None = None
) -> T:
    """`fn(*args)` in a worker thread, waited for to its end (see `settle`).

    When the caller is cancelled but `fn` succeeded, `undo(result)` runs (in a thread,
    waited for too) before the cancel is raised: what `fn` made is not left behind.
    """
    job = start(fn, *args)
    try:
        await settle((job,))
    except asyncio.CancelledError:
        if undo is not None and not job.cancelled() and job.exception() is None:
            await run_blocking(undo, job.result())
        raise
    return job.result()
