"""One loop timer for the sleeps of every wait of a client, and a cap on their checks in flight."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque

__all__ = ["PollScheduler"]

_INF = float("inf")
# Below this many entries the heap is never compacted: stale entries cost little there.
_COMPACT_MIN = 64
# A check falling due within this many seconds of the one whose time has come may be
# made with it, in the same turn of the loop: one wake-up for many requests instead of
# one each, which measured a third of the client's CPU per poll. How early a sleep may
# come is its own (`early_share` of its length, at most this); a deadline's is none.
_SLACK = 0.25


class PollScheduler:
    """Holds the due time of every sleeping wait in one heap, behind one loop timer.

    A wait sleeps by awaiting the future `sleep(when)` returns; no task, cancel scope or
    timer of its own. When its time comes the future resolves to True once a check slot
    is free: at most `limit` checks run at once (the rest queue in due order, so a burst
    of due polls never floods the connection pool), and the holder gives its slot back
    with `done()`. When the timer fires, sleeps due a little later may come along (see
    `_SLACK`): polls spread over time go out in batches, each batch one wake-up of the
    loop and of the process. A sleep with `slot=False` (a deadline) resolves to False at
    its time, never early, slot or not. `wake(future)` makes a sleep due now. Cancelling
    the awaiting task cancels its future: the heap entry is skipped when it comes up.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        # (when, order, future, wants a slot, deadline, early): order keeps equal times
        # first-come; a check may be made `early` milliseconds before `when`, with others
        # falling due (an int below 257, which Python never allocates: 100,000 idle
        # waits are 100,000 entries).
        self._heap: list[tuple[float, int, asyncio.Future[bool], bool, float, int]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _INF
        # Due sleeps waiting for a check slot, in due order.
        self._ready: deque[asyncio.Future[bool]] = deque()
        self._busy = 0
        self._pushes = 0
        self._closed: BaseException | None = None

    @property
    def busy(self) -> int:
        """Checks holding a slot now."""
        return self._busy

    @property
    def sleeping(self) -> int:
        """Entries in the heap (cancelled ones included until they come up)."""
        return len(self._heap)

    def sleep(
        self,
        when: float,
        *,
        slot: bool = True,
        deadline: float = _INF,
        early_share: float = 0.0,
    ) -> asyncio.Future[bool]:
        """A future resolving at `when` (loop clock): True with a check slot held, or False.

        With `slot`, a sleep that is due but still queued for a slot at `deadline`
        resolves to False then, so a deadline is kept even when every slot is busy. A
        sleep with a slot may resolve up to `early_share` of its length early (at most
        `_SLACK`), when the timer fires for another one due before it.
        """
        loop = self._bind()
        future: asyncio.Future[bool] = loop.create_future()
        if self._closed is not None:
            future.set_exception(self._closed)
            return future
        early = min(_SLACK, early_share * (when - loop.time())) if slot else 0.0
        self._push(when, future, slot, deadline, max(0, int(early * 1000)))
        return future

    def wake(self, future: asyncio.Future[bool]) -> None:
        """Make a sleep due now (its heap entry is then skipped as done)."""
        if not future.done() and self._closed is None:
            self._ready.append(future)
            self._grant()

    def done(self) -> None:
        """A check ended: its slot goes to the next due sleep."""
        self._busy -= 1
        self._grant()

    def close(self, error: BaseException) -> None:
        """Fail every sleep with `error` (the client closed); later sleeps fail at once."""
        self._closed = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = _INF
        heap, self._heap = self._heap, []
        ready, self._ready = self._ready, deque()
        for future in itertools.chain((entry[2] for entry in heap), ready):
            if not future.done():
                future.set_exception(error)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this TransactionLink client was first used in another event loop; "
                "create one client per loop"
            )
        return loop

    def _push(
        self,
        when: float,
        future: asyncio.Future[bool],
        slot: bool,
        deadline: float,
        early: int,
    ) -> None:
        self._pushes += 1
        if self._pushes & 1023 == 0 and len(self._heap) >= _COMPACT_MIN:
            self._compact()
        heapq.heappush(self._heap, (when, next(self._order), future, slot, deadline, early))
        if when < self._timer_at:
            self._arm(when)

    def _compact(self) -> None:
        # Cancelled waits leave their entries behind; drop them once they are half the heap.
        live = [entry for entry in self._heap if not entry[2].done()]
        if len(live) * 2 <= len(self._heap):
            heapq.heapify(live)
            self._heap = live

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = _INF
        assert self._loop is not None
        now = self._loop.time()
        heap = self._heap
        ready = self._ready
        while heap:
            when, _, future, slot, deadline, early = heap[0]
            if future.done():
                heapq.heappop(heap)
                continue
            # In due order only, up to the first that may not come yet: grants keep the
            # order of due times, and a heap of deadlines is never searched.
            if when - early / 1000 > now:
                break
            heapq.heappop(heap)
            if not slot:
                future.set_result(False)
                continue
            if deadline < _INF and self._busy + len(ready) >= self._limit:
                # It will queue behind busy slots: its deadline gets an entry of its own.
                heapq.heappush(heap, (deadline, next(self._order), future, False, _INF, 0))
            ready.append(future)
        self._grant()
        if heap:
            self._arm(heap[0][0])

    def _grant(self) -> None:
        ready = self._ready
        while ready and self._busy < self._limit:
            future = ready.popleft()
            if not future.done():
                self._busy += 1
                future.set_result(True)
