"""Group commit: blocking operations run in a worker thread, one batch (one commit) at a time."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from .._threads import settle, start

__all__ = ["GroupCommit", "Outcome"]

T = TypeVar("T")

#: An operation's outcome in a batch: (True, value) or (False, the exception it raised).
Outcome = tuple[bool, Any]
RunBatch = Callable[[Sequence[Callable[[], Any]]], list[Outcome]]


@attrs.define
class _Item:
    op: Callable[[], Any]
    future: asyncio.Future[Any]


class GroupCommit:
    """Runs operations through `run_batch` in a worker thread, never two batches at once.

    Operations submitted while a batch runs wait and go together into the next one, so
    a hundred concurrent claims cost one durable commit, not a hundred. Each submitter
    waits until its batch has ended, even when cancelled (see `_threads.settle`): what a
    cancelled caller asked for may have been committed, and the caller must know.
    """

    def __init__(self, run_batch: RunBatch) -> None:
        self._run_batch = run_batch
        self._pending: list[_Item] = []
        self._job: asyncio.Future[list[Outcome]] | None = None

    async def submit(
        self,
        op: Callable[[], T],
        *,
        undo: Callable[[T], Callable[[], object] | None] | None = None,
    ) -> T:
        """`op()` in the next batch; its value, or the exception it raised.

        When the caller is cancelled but `op` succeeded, the operation `undo(value)`
        returns (if any) runs too before the cancel is raised.
        """
        item = _Item(op, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        self._kick()
        try:
            await settle((item.future,))
        except asyncio.CancelledError:
            future = item.future
            if undo is not None and not future.cancelled() and future.exception() is None:
                undo_op = undo(future.result())
                if undo_op is not None:
                    await self.submit(undo_op)
            raise
        value: T = item.future.result()
        return value

    async def drain(self) -> None:
        """Wait until every submitted operation has run."""
        while self._job is not None or self._pending:
            if self._job is None:
                self._kick()
            assert self._job is not None
            await settle((self._job,))

    def _kick(self) -> None:
        if self._job is not None or not self._pending:
            return
        batch, self._pending = self._pending, []
        self._job = start(self._run_batch, [item.op for item in batch])
        self._job.add_done_callback(functools.partial(self._finished, batch))

    def _finished(self, batch: list[_Item], job: asyncio.Future[list[Outcome]]) -> None:
        self._job = None
        failure = None if job.cancelled() else job.exception()
        for index, item in enumerate(batch):
            if item.future.done():
                continue
            if job.cancelled():
                item.future.cancel()
            elif failure is not None:
                item.future.set_exception(failure)
                continue
            ok, value = job.result()[index]
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)
        self._kick()
