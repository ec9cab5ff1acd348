"""AdaptivePacer: a launch batch's own pace, one launch at a time through an AdaptiveRate."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping

import anyio

from .._request import AnswerObserver, Pace
from .._retry import parse_retry_after
from .adaptive import AdaptiveRate

__all__ = ["AdaptivePacer"]

logger = logging.getLogger("transactionlink_async")


class AdaptivePacer:
    """Spaces a batch's launches (retries included) at the rate its 429s teach.

    Unlimited until the first 429: until then a launch's turn costs nothing. Turns are
    then handed out one at a time, so a rate that changes applies from the next launch.
    """

    def __init__(self, *, default_pause: float) -> None:
        self._default_pause = default_pause
        self._rate: AdaptiveRate | None = None  # made on first use, on the loop's clock
        self._turns = asyncio.Lock()

    def current_rate(self) -> float | None:
        """Launches a second allowed now; None while the batch has met no 429."""
        return None if self._rate is None else self._rate.rate(anyio.current_time())

    def hooks(self) -> tuple[Pace, AnswerObserver]:
        """The `pace` and `on_answer` of one launch (all its attempts)."""
        sent_at = -math.inf

        async def pace() -> None:
            nonlocal sent_at
            rate = self._adaptive()
            if rate.limited:
                async with self._turns:
                    wait = rate.reserve(anyio.current_time())
                    if wait > 0.0:
                        await anyio.sleep(wait)
            sent_at = anyio.current_time()

        def on_answer(status: int, headers: Mapping[str, str]) -> None:
            rate = self._adaptive()
            now = anyio.current_time()
            retry_after = (
                parse_retry_after(headers.get("Retry-After"), now=time.time())
                if status in (429, 503)
                else None
            )
            if status == 429 or retry_after is not None:
                pause = self._default_pause if retry_after is None else retry_after
                before = rate.rate(sent_at)
                if rate.throttled(now=now, sent_at=sent_at, resume_at=now + pause):
                    logger.debug(
                        "launch_many: %d to a launch sent at %s/s; resuming at %.1f/s in %.1fs",
                        status,
                        "no set rate" if before is None else f"{before:.1f}",
                        rate.rate(now + pause),
                        pause,
                    )
            else:
                rate.accepted(now)

        return pace, on_answer

    def _adaptive(self) -> AdaptiveRate:
        if self._rate is None:
            self._rate = AdaptiveRate(now=anyio.current_time())
        return self._rate
