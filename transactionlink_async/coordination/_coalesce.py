"""Concurrent requests for Redis gathered into one round trip per batch, one batch at a time.

A thousand waits starting together, or a thousand launches taking rate tokens, then cost
Redis a few calls instead of a thousand, and never more connections than batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ._guard import CoordinationUnavailable

__all__ = ["Coalescer"]

logger = logging.getLogger("transactionlink_async")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`get(key)` joins the next batch; `fetch` serves a whole batch ({key: callers} -> values).

    Each caller gets the batch's value for its key and its place among that key's callers
    (0, 1, ...). When `fetch` cannot reach Redis, `fallback(key, callers)` answers instead:
    coordination never makes a call fail.
    """

    def __init__(
        self,
        fetch: Callable[[dict[K, int]], Awaitable[dict[K, V]]],
        fallback: Callable[[K, int], V],
    ) -> None:
        self._fetch = fetch
        self._fallback = fallback
        self._waiting: dict[K, list[asyncio.Future[tuple[V, int]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> tuple[V, int]:
        callers = self._waiting.setdefault(key, [])
        future: asyncio.Future[tuple[V, int]] = asyncio.get_running_loop().create_future()
        callers.append(future)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        # Shielded: one caller cancelled must not cancel the answer the others share.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        batch: dict[K, list[asyncio.Future[tuple[V, int]]]] = {}
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                counts = {key: len(callers) for key, callers in batch.items()}
                try:
                    values = await self._fetch(counts)
                except CoordinationUnavailable:
                    values = {}
                except Exception:
                    # A bug or a garbled answer: logged, and answered locally all the same.
                    logger.exception("a coordination batch failed; answering locally")
                    values = {}
                self._settle(batch, values)
                batch = {}
        finally:
            self._task = None
            # Closed under us (cancelled): nobody waiting is left without an answer.
            self._settle(batch, {})
            waiting, self._waiting = self._waiting, {}
            self._settle(waiting, {})

    def _settle(
        self, batch: dict[K, list[asyncio.Future[tuple[V, int]]]], values: dict[K, V]
    ) -> None:
        for key, callers in batch.items():
            value = values[key] if key in values else self._fallback(key, len(callers))
            for index, future in enumerate(callers):
                if not future.done():
                    future.set_result((value, index))

    async def aclose(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            # wait() does not raise the task's CancelledError, only our own cancellation.
            await asyncio.wait([task])
