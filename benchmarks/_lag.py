"""A loop-lag probe: how late a task asking to wake every millisecond actually wakes."""

from __future__ import annotations

import asyncio
import gc
import time
from types import TracebackType
from typing import Any

__all__ = ["LagProbe"]


class LagProbe:
    """`async with LagProbe() as probe: ...`, then `probe.figures()`: max and p99 lag in ms.

    A loop timer asks to run every millisecond and notes how late it ran: a stall of the
    event loop (a long computation on it, or the GIL held by a thread) shows as one late
    run as long as the stall. On a shared machine the process is also put aside now and
    then while other processes run, which shows the same way; so each late run is also
    counted as `cpu_lag`: the part of it during which this process used the CPU (a stall
    of its own making), at most the lag itself. `gc_max_ms` is the longest collection of
    the garbage collector meanwhile (in any thread): it stops every thread, and visits
    every object the process holds, so it grows with what the work keeps in memory.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self._interval = interval
        self._lags: list[float] = []
        self._cpu_lags: list[float] = []
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._cpu_at = 0.0
        self._gc_began = 0.0
        self._gc_longest = 0.0

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        else:
            self._gc_longest = max(self._gc_longest, time.perf_counter() - self._gc_began)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._cpu_at = time.process_time()
        self._due = loop.time() + self._interval
        self._timer = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._note(loop.time())
        self._arm(loop)

    def _note(self, now: float) -> None:
        lag = max(0.0, now - self._due)
        self._lags.append(lag)
        # CPU time the process spent since the timer was set, beyond the interval itself.
        busy = time.process_time() - self._cpu_at - self._interval
        self._cpu_lags.append(min(lag, max(0.0, busy)))

    async def __aenter__(self) -> LagProbe:
        gc.callbacks.append(self._gc)
        self._arm(asyncio.get_running_loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            # The run still pending is as late as the work that ends now kept it.
            self._note(asyncio.get_running_loop().time())

    def figures(self) -> dict[str, Any]:
        def at(values: list[float], share: float) -> float:
            ordered = sorted(values) or [0.0]
            return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

        return {
            "lag_max_ms": at(self._lags, 1.0),
            "lag_p99_ms": at(self._lags, 0.99),
            "cpu_lag_max_ms": at(self._cpu_lags, 1.0),
            "cpu_lag_p99_ms": at(self._cpu_lags, 0.99),
            "gc_max_ms": self._gc_longest * 1000,
            "lag_samples": len(self._lags),
        }
