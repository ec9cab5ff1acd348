"""A loop-lag probe: how late a task asking to wake every millisecond actually wakes."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

__all__ = ["LagProbe"]


class LagProbe:
    """`async with LagProbe() as probe: ...`, then `probe.figures()`: max and p99 lag in ms.

    A stall of the event loop (a long computation on it, or the GIL held by a thread)
    shows as one late wake-up as long as the stall. On a shared machine, other processes
    taking the CPU show too: compare against a peer measured in the same run.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self._interval = interval
        self._lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self._lags.append(max(0.0, loop.time() - due))

    async def __aenter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0)  # the probe is running before the measured work starts
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # The probe's own CancelledError comes back as a value; the caller's is raised.
            await asyncio.gather(task, return_exceptions=True)

    def figures(self) -> dict[str, Any]:
        lags = sorted(self._lags) or [0.0]
        return {
            "lag_max_ms": lags[-1] * 1000,
            "lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000,
            "lag_samples": len(lags),
        }
