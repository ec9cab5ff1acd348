"""RateGate, the rate-limit step of the client's door: pauses, a learned pace, the RateLimit."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import anyio
import yarl

from ..coordination import KnownPauses, RateBudget
from ..errors import RateLimitError
from .adaptive import AdaptiveRate
from .limit import RateLimit
from .pause import jittered

__all__ = ["RateGate"]

logger = logging.getLogger("transactionlink_async")

#: A shared pause ending this much later than any this client knew of is news from another
#: client (another process's 429), not the echo of its own.
HEARD_AFTER = 0.05


class RateGate:
    """What every attempt of every request goes through before it is sent, and after.

    Before: a pause the API asked for (429, or 503 with Retry-After, answered to any
    request of the same kind) is waited out, with jitter so the waiters do not come back
    together; then the pace the client learned from the API's 429s (none until the
    first); then the client's `RateLimit`. A pause longer than `max_pause` (the retry
    policy's `max_retry_after`) raises RateLimitError at once instead. After: the answer
    teaches the pace, and a pause it asks for is recorded for the whole client.
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
        # Read at once where the budget allows: every request asks it.
        self._pause_left = budget.pause_left if isinstance(budget, KnownPauses) else None
        self._limit = limit
        self._max_pause = max_pause
        self._default_pause = default_pause
        # Wakes every waiter when the client closes: a closed client keeps nobody waiting.
        self._closed: asyncio.Event | None = None
        self._is_closed = False
        self._paces: dict[str, AdaptiveRate] = {}
        # Turns of the learned pace and of the RateLimit are taken one caller at a time,
        # at the moment they are used: a stalled loop never releases a burst of turns that
        # fell due meanwhile, and a pace that changes applies from the very next request.
        self._pace_turns: dict[str, asyncio.Lock] = {}
        self._limit_turns: dict[str, asyncio.Lock] = {}
        # The end of the latest pause of each kind this client asked for or heard of.
        self._known_pauses: dict[str, float] = {}

    def current_rate(self, kind: str) -> float | None:
        """Requests a second the client paces `kind` at now: the pace learned from 429s,
        capped by the `RateLimit`; None while neither holds it back."""
        pace = self._paces.get(kind)
        learned = None if pace is None else pace.rate(time.monotonic())
        limit = None if self._limit is None else self._limit.per_second
        if learned is None or limit is None:
            return learned if limit is None else limit
        return min(learned, limit)

    def clear(self, kind: str) -> bool:
        """Whether an attempt of `kind` may be sent now with nothing to wait for: no pause,
        no pace learned from 429s, no RateLimit (the path of every request until a 429).
        When not, `before_send` waits as need be."""
        if self._limit is not None or self._pause_left is None or self._is_closed:
            return False
        return not self._pace(kind).limited and not self._pause_left(kind)

    async def before_send(self, kind: str, method: str, url: yarl.URL) -> float:
        """Wait until an attempt of `kind` may be sent, which it must then be at once;
        the moment it was let through (for `answered`)."""
        pace = self._pace(kind)
        while True:
            left = await self._budget.paused_for(kind)
            if left:
                self._heard(kind, pace, left)
                await self._wait_out(left, method, url)
            if self._is_closed:
                return time.monotonic()  # the caller finds the client closed
            if not pace.limited and self._limit is None:
                return time.monotonic()  # the path of every request until a 429
            if pace.limited:
                async with self._pace_turns.setdefault(kind, asyncio.Lock()):
                    wait = pace.reserve(time.monotonic())
                    if wait > 0.0:
                        await self.sleep(wait)
            if self._limit is not None:
                async with self._limit_turns.setdefault(kind, asyncio.Lock()):
                    wait = await self._budget.take(
                        kind, per_second=self._limit.per_second, burst=self._limit.burst
                    )
                    if wait > 0.0:
                        await self.sleep(wait)
            # A pause that began meanwhile wins: this turn is given up, not used in it.
            if not await self._budget.paused_for(kind):
                return time.monotonic()

    def _pace(self, kind: str) -> AdaptiveRate:
        """The pace learned for `kind` (unlimited until its first 429)."""
        pace = self._paces.get(kind)
        if pace is None:
            pace = self._paces[kind] = AdaptiveRate(now=time.monotonic())
        return pace

    def accepted(self, kind: str) -> None:
        """An attempt of `kind` got an answer below 400 (the path of every request)."""
        pace = self._paces.get(kind)
        if pace is not None:
            pace.accepted(time.monotonic())

    async def answered(
        self, kind: str, status: int, retry_after: float | None, *, sent_at: float
    ) -> bool:
        """Learn from an error answer, and note the pause it asks for; whether it did."""
        if status == 429:
            seconds = self._default_pause if retry_after is None else retry_after
        elif status == 503 and retry_after is not None:
            seconds = retry_after
        else:
            self.accepted(kind)  # refused for another reason: not for the rate
            return False
        now = time.monotonic()
        pace = self._paces.get(kind)
        if pace is not None:
            before = pace.rate(sent_at)
            if pace.throttled(now=now, sent_at=sent_at, resume_at=now + seconds):
                logger.debug(
                    "%d to a request sent at %s a second: pacing at %.1f a second in %.1fs",
                    status,
                    "no set rate" if before is None else f"{before:.1f}",
                    pace.rate(now + seconds),
                    seconds,
                )
        self._known_pauses[kind] = max(self._known_pauses.get(kind, -math.inf), now + seconds)
        await self._budget.pause(kind, seconds)
        return True

    def _heard(self, kind: str, pace: AdaptiveRate, left: float) -> None:
        """A pause this client did not ask for was another client's 429 (another process,
        through a shared coordination backend): it teaches this client's pace as its own
        429 would. Without it, each process of a deployment sharing one limit would come
        back at its old pace after every pause, and draw the next one for all of them."""
        now = time.monotonic()
        until = now + left
        if until <= self._known_pauses.get(kind, -math.inf) + HEARD_AFTER:
            return
        self._known_pauses[kind] = until
        pace.throttled(now=now, sent_at=now, resume_at=until)

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
            # Still a checkpoint, where a cancel lands as at any other await.
            await asyncio.sleep(0)
            return
        if self._closed is None:
            self._closed = asyncio.Event()
        with anyio.move_on_after(seconds):
            await self._closed.wait()
