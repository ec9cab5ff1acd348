"""Batch progress: launched, running, finished, failed, downloaded, and an ETA, on one line."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TextIO

import attrs

from .progress import format_duration

__all__ = ["BatchCounts", "BatchProgress", "eta", "render_batch"]


@attrs.define
class BatchCounts:
    """What a batch run has done so far, key by key."""

    total: int
    #: Launched by this run.
    launched: int = 0
    #: Launched by an earlier run (found in the journal).
    resumed: int = 0
    in_doubt: int = 0
    launch_failed: int = 0
    #: Being waited for now.
    running: int = 0
    #: Final status known (this run saw it, or the journal had it).
    finished: int = 0
    completed: int = 0
    #: Ended in FAILED, TIMEOUT, TERMINATED, EXPIRED or CANCELLED.
    failed: int = 0
    downloaded: int = 0
    #: A wait or a download that raised.
    errors: int = 0
    #: Keys with nothing more to do.
    done: int = 0
    #: Keys that had nothing more to do when the run started: they cost no time.
    done_before: int = 0

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def eta(counts: BatchCounts, elapsed: float) -> float | None:
    """Seconds left at this run's pace (keys resumed as done do not count towards it)."""
    paced = counts.done - counts.done_before
    if paced <= 0 or elapsed <= 0:
        return None
    return (counts.total - counts.done) * elapsed / paced


def render_batch(counts: BatchCounts, elapsed: float) -> str:
    """One status line for people."""
    launched = counts.launched + counts.resumed
    parts = [f"launched {launched}/{counts.total}"]
    if counts.resumed:
        parts[0] += f" ({counts.resumed} resumed)"
    parts += [
        f"running {counts.running}",
        f"finished {counts.finished}",
        f"failed {counts.failed + counts.launch_failed + counts.errors}",
    ]
    if counts.in_doubt:
        parts.append(f"in doubt {counts.in_doubt}")
    parts.append(f"downloaded {counts.downloaded}")
    left = 0.0 if counts.done >= counts.total else eta(counts, elapsed)
    parts.append(f"ETA {format_duration(left)}")
    return "  ".join(parts)


class BatchProgress:
    """Draws `render_batch` on `stream`: redrawn in place on a terminal (at most every
    `redraw` seconds), a plain line every `line_interval` seconds elsewhere."""

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        redraw: float = 0.1,
        line_interval: float = 5.0,
    ) -> None:
        self._stream = stream
        self._live = _is_terminal(stream) if live is None else live
        self._clock = clock
        self._interval = redraw if self._live else line_interval
        self._started = clock()
        self._last = -math.inf
        self._width = 0

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def update(self, counts: BatchCounts) -> None:
        now = self._clock()
        if now - self._last >= self._interval:
            self._draw(counts, now)

    def finish(self, counts: BatchCounts) -> None:
        """Draw the last state and end the line."""
        self._draw(counts, self._clock())
        if self._live:
            self._stream.write("\n")
        self._stream.flush()

    def _draw(self, counts: BatchCounts, now: float) -> None:
        self._last = now
        text = render_batch(counts, now - self._started)
        if self._live:
            padding = " " * max(0, self._width - len(text))
            self._width = len(text)
            self._stream.write(f"\r{text}{padding}")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False
