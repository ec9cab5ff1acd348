"""Batch iterators: the one async-iterator protocol, their background tasks, the wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import anyio

__all__ = ["BatchIterator", "BatchRun", "Signal", "TaskSet"]


class Signal:
    """Wakes the one consumer waiting for news; news given while nobody waits is kept."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, at_most: float | None = None) -> None:
        """Return on news (or after `at_most` seconds), and forget it."""
        if at_most is None:
            await self._event.wait()
        else:
            with anyio.move_on_after(at_most):
                await self._event.wait()
        self._event.clear()


class TaskSet:
    """Background tasks of one batch: started one by one, cancelled and reaped together.

    Not a task group on purpose: a batch is consumed with `async for`, and a task group
    cannot stay open across the consumer's loop body (its cancel scope would span
    unrelated code of the consumer's task).
    """

    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        # Told after a finished task has left the set, so whoever counts tasks sees it gone.
        self._on_done = on_done

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Workers record their own errors; anything else (a bug) still gets logged by asyncio
        # once, rather than as "exception never retrieved" at garbage collection time.
        if not task.cancelled() and task.exception() is not None:
            asyncio.get_running_loop().call_exception_handler(
                {"message": "batch task failed", "exception": task.exception(), "task": task}
            )
        if self._on_done is not None:
            self._on_done()

    def cancel(self) -> None:
        """Cancel every task but the calling one (a task may stop its siblings)."""
        try:
            current = asyncio.current_task()
        except RuntimeError:  # no running loop: called by a finalizer
            current = None
        for task in self._tasks:
            if task is not current:
                task.cancel()

    def abandon(self) -> None:
        """Cancel every task from a finalizer: quietly, even once the loop is gone."""
        with contextlib.suppress(RuntimeError):  # "Event loop is closed"
            self.cancel()

    async def join(self, *, cancel: bool) -> None:
        """Wait for every task to end (cancelling them first when asked).

        When the wait itself is cancelled, the tasks are cancelled too and reaped before
        the cancellation goes on, so nothing outlives the caller.
        """
        if cancel:
            self.cancel()
        try:
            while self._tasks:
                await asyncio.wait(set(self._tasks))
        except BaseException:
            self.cancel()
            with anyio.CancelScope(shield=True):
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
            raise


T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")
B = TypeVar("B", bound="BatchIterator[Any]")


class BatchRun(Protocol[T_co]):
    """The state behind a batch iterator, kept apart so its tasks never keep the iterator alive."""

    async def next(self) -> T_co: ...

    def abandon(self) -> None: ...

    async def close(self, *, cancel: bool) -> None: ...


class BatchIterator(Generic[T]):
    """An async iterator over a batch's outcomes, usable with `async for` and `async with`.

    `aclose()` ends the batch: it cancels the work still running when `CANCEL_ON_CLOSE`
    (waits have nothing to finish on their own) and otherwise lets it finish (a launch in
    flight is carried out either way, so its outcome is awaited). Leaving `async with`
    with an error or a cancellation always cancels. Once nobody holds the iterator (a
    plain `async for` that breaks out), its run is abandoned: nothing new starts.
    """

    #: Whether a clean `aclose()` / end of `async with` cancels the work still running.
    CANCEL_ON_CLOSE: ClassVar[bool] = True

    def __init__(self, run: BatchRun[T]) -> None:
        self._run = run
        finalizer = weakref.finalize(self, run.abandon)
        finalizer.atexit = False

    def __aiter__(self: B) -> B:
        return self

    async def __anext__(self) -> T:
        return await self._run.next()

    async def aclose(self) -> None:
        """End the batch and wait until nothing of it runs any more."""
        await self._run.close(cancel=self.CANCEL_ON_CLOSE)

    async def __aenter__(self: B) -> B:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._run.close(cancel=self.CANCEL_ON_CLOSE or exc_type is not None)
