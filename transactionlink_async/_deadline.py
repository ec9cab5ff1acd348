"""One timer for the time limits of every API attempt in flight, instead of several each."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

__all__ = [
    "Attempt",
    "Watchdog",
    "task_cancelling",
    "task_uncancel",
    "uncancel_supported",
    "watchdog_supported",
]

_INF = float("inf")

#: Task.cancelling() and Task.uncancel() exist (3.11+): a cancellation of our own can be
#: told from anyone else's, and withdrawn.
uncancel_supported = sys.version_info >= (3, 11)
# Without them, the transport leaves the limits to aiohttp's per-request timers.
watchdog_supported = uncancel_supported

if sys.version_info >= (3, 11):

    def task_cancelling(task: asyncio.Task[Any]) -> int:
        """`task.cancelling()`: the cancellations requested and not withdrawn (3.11+)."""
        return task.cancelling()

    def task_uncancel(task: asyncio.Task[Any]) -> int:
        """`task.uncancel()`: withdraw one cancellation request; those left (3.11+)."""
        return task.uncancel()

else:  # pragma: no cover - neither is used there

    def task_cancelling(task: asyncio.Task[Any]) -> int:
        """Not on this Python: `Task.cancelling()` is 3.11+."""
        raise RuntimeError("Task.cancelling() needs Python 3.11+")

    task_uncancel = task_cancelling


class Attempt:
    """One attempt's limits: `ends_at` (total) and `idle_until` (read), on the loop's clock."""

    __slots__ = ("cancelling", "ends_at", "expired", "idle_until", "task")

    def __init__(self, task: asyncio.Task[object], ends_at: float, idle_until: float) -> None:
        self.task = task
        self.ends_at = ends_at
        self.idle_until = idle_until
        self.expired = False
        # Cancellations already requested when the attempt began: not ours to absorb.
        self.cancelling = task_cancelling(task)

    @property
    def deadline(self) -> float:
        return min(self.ends_at, self.idle_until)


class Watchdog:
    """Cancels attempts that ran past `total` seconds, or `idle` seconds without progress.

    aiohttp would schedule and cancel three loop timers per request for a total and a
    read limit (one, then one more per chunk read); at thousands of calls a second that
    is a measurable share of the client's CPU. Here one timer, set to the earliest
    deadline among the attempts in flight, serves them all: an attempt costs a slot
    object and a few clock reads. A limit is enforced at most `tolerance` late (5 % of the
    shortest limit, at most 1 s: aiohttp itself rounds limits of 5 s and more up to whole
    seconds). A cancelled attempt is told apart from any other cancellation with
    `Task.uncancel()`, as `asyncio.timeout` does.
    """

    def __init__(
        self, *, total: float | None, idle: float | None, first_idle: float | None = None
    ) -> None:
        self._total = total
        # `first_idle` runs from the start of an attempt to its first progress (it may
        # include opening a connection), `idle` from each progress to the next.
        self._idle = idle
        self._first_idle = idle if first_idle is None else first_idle
        limits = [limit for limit in (total, idle, self._first_idle) if limit is not None]
        self.tolerance = min(1.0, 0.05 * min(limits)) if limits else 0.0
        self._attempts: set[Attempt] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _INF

    def start(self) -> Attempt | None:
        """Watch the current task's attempt; None when there is nothing to watch."""
        if self._total is None and self._idle is None:
            return None
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - the transport always runs in a task
            return None
        loop = task.get_loop()
        now = loop.time()
        attempt = Attempt(
            task,
            _INF if self._total is None else now + self._total,
            _INF if self._first_idle is None else now + self._first_idle,
        )
        self._attempts.add(attempt)
        self._cover(loop, attempt.deadline)
        return attempt

    def progress(self, attempt: Attempt | None) -> None:
        """Bytes arrived: the idle limit starts again from now."""
        if attempt is not None and self._idle is not None:
            loop = attempt.task.get_loop()
            attempt.idle_until = loop.time() + self._idle
            # Only the first progress can move a deadline earlier (`first_idle` > `idle`).
            self._cover(loop, attempt.deadline)

    def finish(self, attempt: Attempt | None) -> None:
        # The timer stays armed: it fires at most once more, finds nothing, and stops.
        if attempt is not None:
            self._attempts.discard(attempt)
            if attempt.expired:
                # Our cancellation was consumed by something that raised another error
                # instead of CancelledError: withdraw the request all the same.
                attempt.expired = False
                task_uncancel(attempt.task)

    def timed_out(self, attempt: Attempt | None) -> bool:
        """After a CancelledError: True when it was ours alone, and is now withdrawn.

        False means someone else cancelled the task too (or only they did): the
        cancellation must go on.
        """
        if attempt is None or not attempt.expired:
            return False
        attempt.expired = False
        return task_uncancel(attempt.task) <= attempt.cancelling

    def close(self) -> None:
        timer, self._timer = self._timer, None
        self._timer_at = _INF
        if timer is not None:
            timer.cancel()
        self._attempts.clear()

    def _cover(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        # Re-arming for every small move would cost the timers this class saves: the
        # timer is moved only when it would otherwise fire more than `tolerance` late.
        if deadline + self.tolerance < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._fire, loop)
            self._timer_at = deadline

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_at = _INF
        now = loop.time()
        earliest = _INF
        for attempt in self._attempts:
            deadline = attempt.deadline
            if deadline <= now:
                if not attempt.expired:
                    attempt.expired = True
                    attempt.task.cancel()
            elif deadline < earliest:
                earliest = deadline
        if earliest != _INF:
            self._cover(loop, earliest)
