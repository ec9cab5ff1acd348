"""Letting other tasks run during a long stretch of work that never has to wait."""

from __future__ import annotations

import asyncio
import time

__all__ = ["Pacer"]

#: At most this long between suspensions: a few ms keeps other tasks' latency low, and a
#: suspension costs about as much as reading one chunk, so few are spent.
DEFAULT_INTERVAL = 0.005


class Pacer:
    """`await pacer.pace()` in a busy loop suspends once every `interval` seconds.

    Reading a body whose bytes have already arrived never suspends (aiohttp hands buffered
    data over at once), and neither does parsing it: on a fast link, a download or a
    `json_items` loop would keep every other task of the event loop waiting to its end.
    """

    __slots__ = ("_interval", "_next")

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self._interval = interval
        self._next = time.monotonic() + interval

    async def pace(self) -> None:
        if time.monotonic() >= self._next:
            await asyncio.sleep(0)
            self._next = time.monotonic() + self._interval
