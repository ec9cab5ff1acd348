"""Webhook news through Redis: a message to every process, and a short-lived marker."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ._base import WakeTarget
from ._coalesce import Coalescer
from ._guard import CoordinationUnavailable, Guard
from ._keys import Keys
from ._markers import MARKER_TTL, Markers
from ._news import LocalNews, decode_news, encode_news

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisNews"]


class RedisNews:
    """The news of every process on one Redis and namespace.

    `announce` sets the marker first and publishes second: a process that subscribes
    in between finds the marker when it checks its waits. `announced` asks this process's
    notes first, then Redis (lookups made together share one MGET).
    """

    def __init__(
        self,
        client: Redis,
        guard: Guard,
        keys: Keys,
        *,
        sender: str,
        markers: Markers,
        everyone: Callable[[], Iterable[WakeTarget]],
    ) -> None:
        self._client = client
        self._guard = guard
        self._keys = keys
        self._sender = sender
        self._markers = markers
        self._here = LocalNews(markers, everyone)
        self._everyone = everyone
        self._lookups: Coalescer[str, bool] = Coalescer(self._look_up, lambda _id, _n: False)

    async def announce(
        self, execution_id: str, status: str | None, *, by: WakeTarget | None
    ) -> None:
        if not self._here.announce_here(execution_id, status, by=by):
            return
        message = encode_news(execution_id, None if status is None else str(status), self._sender)

        async def send() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(self._keys.final(execution_id), b"1", px=math.ceil(MARKER_TTL * 1000))
                pipe.publish(self._keys.finals_channel, message)
                await pipe.execute()

        # Without Redis, the waits elsewhere find out by polling, as they always did.
        with contextlib.suppress(CoordinationUnavailable):
            await self._guard.call("announcing a webhook", send)

    async def announced(self, execution_id: str) -> bool:
        if self._markers.seen(execution_id):
            return True
        found, _ = await self._lookups.get(execution_id)
        return found

    async def _look_up(self, ids: dict[str, int]) -> dict[str, bool]:
        names = list(ids)
        values = await self._guard.call(
            "looking up webhook news",
            lambda: self._client.mget([self._keys.final(i) for i in names]),
        )
        return {i: value is not None for i, value in zip(names, values, strict=True)}

    def heard(self, data: bytes) -> None:
        """A news message from the channel: wake this process's waits on it."""
        execution_id, sender = decode_news(data)
        if sender == self._sender:
            return  # ours: the clients of this process were woken when it was announced
        self._markers.note(execution_id)
        for target in self._everyone():
            target.wake(execution_id)

    async def recheck(self, *, first: bool) -> None:
        """After subscribing: wake the waits whose news may have been missed.

        The first time, only news that came before the subscription could be missed, and
        the markers tell which; after a reconnect, anything may have been missed while
        Redis was away (the marker too), so every wait checks once.
        """
        targets = list(self._everyone())
        if not first:
            for target in targets:
                target.wake_all()
            return
        ids = {i for target in targets for i in target.waiting_ids()}
        if not ids:
            return
        try:
            found = await self._look_up(dict.fromkeys(ids, 1))
        except CoordinationUnavailable:
            found = dict.fromkeys(ids, True)  # cannot tell: check them all
        for execution_id, seen in found.items():
            if seen:
                self._markers.note(execution_id)
                for target in targets:
                    target.wake(execution_id)

    async def aclose(self) -> None:
        await self._lookups.aclose()
