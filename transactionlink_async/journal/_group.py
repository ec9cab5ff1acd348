"""Group commit: operations submitted together run as one batch (one commit, one round trip)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from .._threads import settle

__all__ = ["GroupCommit", "Outcome"]

T = TypeVar("T")
Op = TypeVar("Op")

#: An operation's outcome in a batch: (True, value) or (False, the exception it raised).
Outcome = tuple[bool, Any]
#: Starts one batch (in a worker thread, or as a task) and gives its outcomes, in order.
StartBatch = Callable[[Sequence[Any]], "asyncio.Future[list[Outcome]]"]


def _own_copy(error: BaseException) -> BaseException:
    try:
        copied = copy.copy(error)
    except Exception:
        return error
    copied.__cause__ = error.__cause__
    return copied


@attrs.define
class _Item(Generic[Op]):
    op: Op
    future: asyncio.Future[Any]
    job: asyncio.Future[list[Outcome]] | None = None
    outcome: Outcome | None = None


class GroupCommit(Generic[Op]):
    """Runs operations through `start_batch`, never two batches at once.

    Operations submitted while `max_batches` batches run wait and go together into the
    next one, so a hundred concurrent claims cost one durable commit (or one Redis round
    trip), not a hundred. Every submitted operation runs, even when its submitter is cancelled: the
    submitter then waits for it before the cancel goes on (what a cancelled caller asked
    for may have been committed, and the caller must know).
    """

    def __init__(self, start_batch: StartBatch, *, max_batches: int = 1) -> None:
        self._start_batch = start_batch
        #: Batches under way at once: 1 for one SQLite connection; more lets round trips
        #: overlap (an operation waits for its own only), at the cost of smaller batches.
        self._max_batches = max_batches
        self._pending: list[_Item[Op]] = []
        self._jobs: set[asyncio.Future[list[Outcome]]] = set()

    async def submit(self, op: Op, *, undo: Callable[[Any], Op | None] | None = None) -> Any:
        """Run `op` in the next batch: its value, or the exception it raised.

        When the caller is cancelled but `op` succeeded, the operation `undo(value)`
        returns (if any) runs too before the cancel is raised.
        """
        item: _Item[Op] = _Item(op, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        self._kick()
        try:
            return await item.future
        except asyncio.CancelledError:
            # The cancel may have cancelled our future; the operation runs all the same.
            while item.outcome is None:
                self._kick()
                jobs = (item.job,) if item.job is not None else tuple(self._jobs)
                # We raise a cancel below anyway: a repeated one only may not cut this short.
                with contextlib.suppress(asyncio.CancelledError):
                    await settle(jobs)
            ok, value = item.outcome
            if ok and undo is not None:
                undo_op = undo(value)
                if undo_op is not None:
                    await self.submit(undo_op)
            raise

    async def drain(self) -> None:
        """Wait until every submitted operation has run."""
        while self._jobs or self._pending:
            self._kick()
            await settle(tuple(self._jobs))

    def _kick(self) -> None:
        while self._pending and len(self._jobs) < self._max_batches:
            batch, self._pending = self._pending, []
            job = self._start_batch([item.op for item in batch])
            self._jobs.add(job)
            for item in batch:
                item.job = job
            job.add_done_callback(functools.partial(self._finished, batch))

    def _finished(self, batch: list[_Item[Op]], job: asyncio.Future[list[Outcome]]) -> None:
        self._jobs.discard(job)
        if job.cancelled():
            outcomes: list[Outcome] = [(False, asyncio.CancelledError())] * len(batch)
        elif (failure := job.exception()) is not None:
            # One error object each: raised by many callers, a shared one would gather
            # every caller's traceback.
            outcomes = [(False, _own_copy(failure)) for _ in batch]
        else:
            outcomes = job.result()
        for item, outcome in zip(batch, outcomes, strict=True):
            item.outcome = outcome
            if item.future.done():  # cancelled with its submitter
                continue
            ok, value = outcome
            if ok:
                item.future.set_result(value)
            elif isinstance(value, asyncio.CancelledError):
                item.future.cancel()
            else:
                item.future.set_exception(value)
        self._kick()
