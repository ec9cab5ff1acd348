"""Ending a background task for sure: a cancellation that a library loses is sent again."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait"]

#: How long a cancelled task may keep running before it is cancelled again. A cancellation
#: that is not lost ends the task at its next await, far sooner than this.
RECANCEL_AFTER = 0.1


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel `task` and return once it has ended, without raising its outcome.

    One `cancel()` is not always enough on Python 3.10 and 3.11: `asyncio.wait_for`, which
    redis-py awaits for every command it writes, returns the result of a write that finished
    together with the cancellation and drops the cancellation. A task looping forever
    (listening, renewing a lease) would then never end and its closer would wait forever.
    """
    while not task.done():
        task.cancel()
        # wait() raises only our own cancellation, never the task's.
        await asyncio.wait([task], timeout=RECANCEL_AFTER)
