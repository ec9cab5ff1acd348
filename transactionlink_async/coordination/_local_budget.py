"""The rate budget of one process: token buckets on the monotonic clock, pauses in memory."""

from __future__ import annotations

import time
from collections.abc import Callable

from ._gcra import Reservation, check_kind, check_rate, check_seconds, reserve, wait_of

__all__ = ["LocalRateBudget"]

#: Past this many kinds, finished buckets and pauses are dropped (kinds are a handful in
#: practice; this only bounds memory should a caller make them up).
_PRUNE_AT = 256


class LocalRateBudget:
    """A RateBudget for the clients of one process; also the fallback while Redis is away."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: kind -> theoretical arrival time of the bucket (monotonic clock).
        self._tats: dict[str, float] = {}
        #: kind -> when its pause ends (monotonic clock).
        self._pauses: dict[str, float] = {}

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        """Take one token of `kind`'s bucket; the seconds to wait before sending (0.0 = now)."""
        return wait_of(self.reserve(kind, per_second=per_second, burst=burst), 0)

    def reserve(self, kind: str, *, per_second: float, burst: float, count: int = 1) -> Reservation:
        """Take `count` tokens at once (the Redis budget's fallback takes whole batches)."""
        check_kind(kind)
        per_second, burst = check_rate(per_second, burst)
        now = self._clock()
        self._tats[kind], reservation = reserve(
            self._tats.get(kind, now), now, per_second=per_second, burst=burst, count=count
        )
        self._prune(now)
        return reservation

    async def pause(self, kind: str, seconds: float) -> None:
        """Hold `kind` requests back for `seconds` (a pause is lengthened, never shortened)."""
        self.note_pause(kind, seconds)

    def note_pause(self, kind: str, seconds: float) -> None:
        check_kind(kind)
        seconds = check_seconds(seconds)
        now = self._clock()
        until = now + seconds
        if until > self._pauses.get(kind, now):
            self._pauses[kind] = until
        self._prune(now)

    async def paused_for(self, kind: str) -> float:
        """Seconds left of `kind`'s current pause (0.0 when there is none)."""
        return self.pause_left(check_kind(kind))

    def pause_left(self, kind: str) -> float:
        """As `paused_for`, at once."""
        until = self._pauses.get(kind)
        return 0.0 if until is None else max(0.0, until - self._clock())

    def _prune(self, now: float) -> None:
        if len(self._tats) + len(self._pauses) <= _PRUNE_AT:
            return
        self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
        self._pauses = {k: until for k, until in self._pauses.items() if until > now}
