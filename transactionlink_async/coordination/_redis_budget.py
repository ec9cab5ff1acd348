"""RedisRateBudget: one token bucket per kind on Redis's clock, pauses told to every process."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Awaitable
from typing import TYPE_CHECKING, cast

from ._coalesce import Coalescer
from ._gcra import Reservation, check_kind, check_rate, check_seconds, wait_of
from ._guard import CoordinationUnavailable, Guard
from ._keys import Keys
from ._local_budget import LocalRateBudget
from ._scripts import PAUSE, TAKE

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRateBudget"]

#: Longest pause passed on (a day): a Retry-After beyond that is no pacing hint.
_MAX_PAUSE_MS = 24 * 3600 * 1000

_Bucket = tuple[str, float, float]  # kind, per_second, burst


def _is_kind(kind: str) -> bool:
    try:
        check_kind(kind)
    except ValueError:
        return False  # not written by us: left alone
    return True


class RedisRateBudget:
    """A RateBudget shared by every process on one Redis and namespace.

    `take` reserves tokens in Redis (callers arriving together share one round trip);
    `pause` lengthens the kind's pause in Redis and tells every process at once, so
    `paused_for` is answered from memory without a round trip. Without Redis, the same
    calls are served by this process's own LocalRateBudget.
    """

    def __init__(
        self, client: Redis, guard: Guard, keys: Keys, *, sender: str, local: LocalRateBudget
    ) -> None:
        self._client = client
        self._guard = guard
        self._keys = keys
        self._sender = sender
        self._local = local
        self._take = client.register_script(TAKE)
        self._pause = client.register_script(PAUSE)
        self._takes: Coalescer[_Bucket, Reservation] = Coalescer(
            self._reserve_in_redis, self._reserve_here
        )

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        """Take one token of `kind`'s bucket; the seconds to wait before sending (0.0 = now)."""
        check_kind(kind)
        per_second, burst = check_rate(per_second, burst)
        reservation, index = await self._takes.get((kind, per_second, burst))
        return wait_of(reservation, index)

    async def pause(self, kind: str, seconds: float) -> None:
        """Hold `kind` requests back for `seconds` in every process (never shortening a pause)."""
        check_kind(kind)
        seconds = check_seconds(seconds)
        self._local.note_pause(kind, seconds)
        if seconds == 0:
            return
        millis = min(_MAX_PAUSE_MS, max(1, math.ceil(seconds * 1000)))
        message = json.dumps({"kind": kind, "ms": millis, "from": self._sender})
        # Without Redis, this process pauses all the same.
        with contextlib.suppress(CoordinationUnavailable):
            await self._guard.call(
                "sharing a rate-limit pause",
                lambda: self._pause(
                    keys=[self._keys.pause(kind), self._keys.paused_kinds],
                    args=[millis, kind, self._keys.pauses_channel, message],
                ),
            )

    async def paused_for(self, kind: str) -> float:
        """Seconds left of `kind`'s current pause, here or heard from another process."""
        return self.pause_left(check_kind(kind))

    def pause_left(self, kind: str) -> float:
        """As `paused_for`, at once (every pause is known here, heard or our own)."""
        return self._local.pause_left(kind)

    def heard(self, data: bytes) -> None:
        """A pause message from the channel (ours are already noted)."""
        news = json.loads(data)
        if news.get("from") == self._sender:
            return
        kind, millis = news.get("kind"), news.get("ms")
        if isinstance(millis, bool) or not isinstance(millis, int):
            raise TypeError("not a pause message")
        self._local.note_pause(check_kind(kind), min(millis, _MAX_PAUSE_MS) / 1000)

    async def load_pauses(self) -> None:
        """Adopt the pauses under way (after subscribing: messages sent before were missed)."""

        async def load() -> list[tuple[str, int]]:
            # (redis-py types its sync and async clients alike.)
            members = await cast(
                "Awaitable[set[bytes]]", self._client.smembers(self._keys.paused_kinds)
            )
            kinds = sorted(k.decode(errors="replace") for k in members)
            async with self._client.pipeline(transaction=False) as pipe:
                for kind in kinds:
                    pipe.pttl(self._keys.pause(kind))
                left = await pipe.execute()
            return list(zip(kinds, left, strict=True))

        try:
            pauses = await self._guard.call("reading the rate-limit pauses", load)
        except CoordinationUnavailable:
            return
        for kind, millis in pauses:
            if millis > 0 and _is_kind(kind):
                self._local.note_pause(kind, millis / 1000)

    async def _reserve_in_redis(self, buckets: dict[_Bucket, int]) -> dict[_Bucket, Reservation]:
        async def run() -> dict[_Bucket, Reservation]:
            found = {}
            for (kind, per_second, burst), count in buckets.items():
                interval_us = 1e6 / per_second
                first_us = await self._take(
                    keys=[self._keys.bucket(kind)],
                    args=[repr(interval_us), repr(burst * interval_us), count],
                )
                found[(kind, per_second, burst)] = Reservation(
                    first_wait=int(first_us) / 1e6, interval=1 / per_second
                )
            return found

        return await self._guard.call("taking rate-limit tokens", run)

    def _reserve_here(self, bucket: _Bucket, count: int) -> Reservation:
        kind, per_second, burst = bucket
        return self._local.reserve(kind, per_second=per_second, burst=burst, count=count)

    async def aclose(self) -> None:
        await self._takes.aclose()
