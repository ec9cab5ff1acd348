"""RateBudget, where a client's rate-limit state lives, and LocalRateBudget, its in-process form."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from .bucket import Bucket, take_token
from .limit import check_rate
from .pause import extend_pause, pause_left

__all__ = ["LocalRateBudget", "RateBudget"]


class RateBudget(Protocol):
    """Where a client's rate-limit state lives: this process (LocalRateBudget) or shared (Redis)."""

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        """Take one token of `kind`'s bucket; the seconds the caller must wait before sending (0.0 = now)."""  # noqa: E501

    async def pause(self, kind: str, seconds: float) -> None:
        """Record that the API asked `kind` requests to wait `seconds` (a 429, or 503 with Retry-After)."""  # noqa: E501

    async def paused_for(self, kind: str) -> float:
        """Seconds left of `kind`'s current pause (0.0 when there is none)."""


class LocalRateBudget:
    """The rate-limit state of the clients of one process, on its monotonic clock.

    Holds one bucket and one pause per kind (a handful: see `kinds.request_kind`).
    A token taken by a caller that is then cancelled is not given back: the bucket errs
    on the side of sending less.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._pauses: dict[str, float] = {}

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        per_second = check_rate("per_second", per_second, minimum=0.0, strict=True)
        burst = check_rate("burst", burst, minimum=1.0, strict=False)
        bucket, wait = take_token(
            self._buckets.get(kind), now=self._clock(), per_second=per_second, burst=burst
        )
        self._buckets[kind] = bucket
        return wait

    async def pause(self, kind: str, seconds: float) -> None:
        self._pauses[kind] = extend_pause(
            self._pauses.get(kind), now=self._clock(), seconds=seconds
        )

    async def paused_for(self, kind: str) -> float:
        # The path of every request: one dict lookup when nothing is paused.
        if kind not in self._pauses:
            return 0.0
        left = pause_left(self._pauses[kind], now=self._clock())
        if not left:
            del self._pauses[kind]  # ended: the next lookup is the cheap one again
        return left
