"""RateGate, the rate-limit step of the client's door: pauses waited out and noted, limits kept."""

from __future__ import annotations

import asyncio

import anyio
import yarl

from .._request import Pace
from ..errors import RateLimitError
from .budget import RateBudget
from .limit import RateLimit
from .pause import jittered

__all__ = ["RateGate"]


class RateGate:
    """What every attempt of every request goes through before it is sent, and after.

    Before: a pause the API asked for (429, or 503 with Retry-After, answered to any
    request of the same kind) is waited out, with jitter so the waiters do not come back
    together; then the caller's own pace, then the client's `RateLimit`. A pause longer
    than `max_pause` (the retry policy's `max_retry_after`) raises RateLimitError at once
    instead. After: a pause the answer asks for is recorded for the whole client.
    """

    def __init__(
        self,
        budget: RateBudget,
        limit: RateLimit | None,
        *,
        max_pause: float,
        default_pause: float,
    ) -> None:
        self._budget = budget
        self._limit = limit
        self._max_pause = max_pause
        self._default_pause = default_pause
        # Wakes every waiter when the client closes: a closed client keeps nobody waiting.
        self._closed: asyncio.Event | None = None
        self._is_closed = False
        # One caller at a time takes a RateLimit token and sleeps until its turn: a turn
        # taken at the moment it is used, so a stalled loop never releases a burst of
        # turns that fell due meanwhile.
        self._turns: dict[str, asyncio.Lock] = {}

    async def before_send(self, kind: str, method: str, url: yarl.URL, pace: Pace | None) -> None:
        """Wait until an attempt of `kind` may be sent (it must then be sent at once)."""
        while True:
            left = await self._budget.paused_for(kind)
            if left:
                await self._wait_out(left, method, url)
            if pace is None and self._limit is None:
                return
            if pace is not None:
                await pace()
            if self._limit is not None:
                async with self._turns.setdefault(kind, asyncio.Lock()):
                    wait = await self._budget.take(
                        kind, per_second=self._limit.per_second, burst=self._limit.burst
                    )
                    if wait > 0.0:
                        await self.sleep(wait)
            # A pause that began meanwhile wins: this turn is given up, not used in it.
            if not await self._budget.paused_for(kind):
                return

    async def answered(self, kind: str, status: int, retry_after: float | None) -> bool:
        """Note the pause an answer asks for; whether it asked for one."""
        if status == 429:
            seconds = self._default_pause if retry_after is None else retry_after
        elif status == 503 and retry_after is not None:
            seconds = retry_after
        else:
            return False
        await self._budget.pause(kind, seconds)
        return True

    def close(self) -> None:
        """End every wait at once; the callers then find the client closed."""
        self._is_closed = True
        if self._closed is not None:
            self._closed.set()

    async def _wait_out(self, left: float, method: str, url: yarl.URL) -> None:
        if left > self._max_pause:
            error = RateLimitError(
                f"{method} {url} was not sent: the API asked this client to wait "
                f"{left:.0f}s more, longer than RetryPolicy.max_retry_after "
                f"({self._max_pause:g}s) (slow down, or raise max_retry_after to wait longer)",
                retry_after=left,
                status=429,
                method=method,
                url=str(url),
            )
            raise error
        await self.sleep(jittered(left))

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, or until the client closes (the caller then finds it closed)."""
        if self._is_closed:
            return
        if self._closed is None:
            self._closed = asyncio.Event()
        with anyio.move_on_after(seconds):
            await self._closed.wait()
