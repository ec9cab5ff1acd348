"""Download progress: a live bar (bytes, rate, ETA) on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_bytes", "format_duration", "render_line"]

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_bytes(size: float) -> str:
    """`size` bytes for people: 512 B, 1.5 KiB, 100.0 MiB."""
    if size < 1024:
        return f"{int(size)} B"
    for unit in _UNITS:
        size /= 1024
        if round(size, 1) < 1024 or unit == _UNITS[-1]:
            break
    return f"{size:.1f} {unit}"


def format_duration(seconds: float | None) -> str:
    """0:05, 12:30, 1:02:03; `--:--` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_line(done: int, total: int | None, elapsed: float, *, width: int = 24) -> str:
    """One status line: bar and percentage (when the size is known), bytes, rate and ETA."""
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{format_bytes(rate)}/s"
    if total is None or total <= 0:
        return f"{format_bytes(done)}  {speed}"
    fraction = min(1.0, done / total)
    filled = int(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    eta = (total - done) / rate if rate > 0 else None
    return (
        f"[{bar}] {fraction * 100:5.1f}%  {format_bytes(done)} / {format_bytes(total)}  "
        f"{speed}  ETA {format_duration(eta)}"
    )


class Progress:
    """An `on_progress(done_bytes, total_bytes_or_None)` callback that draws on `stream`.

    On a terminal the line is redrawn in place at most every `redraw` seconds; elsewhere
    (a pipe, a CI log) a plain line is printed at each tenth of the size, or every
    `line_interval` seconds while the size is unknown, so logs stay short.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str = "",
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        redraw: float = 0.1,
        line_interval: float = 2.0,
    ) -> None:
        self._stream = stream
        self._label = f"{label} " if label else ""
        self._live = _is_terminal(stream) if live is None else live
        self._clock = clock
        self._redraw = redraw
        self._line_interval = line_interval
        self._started = clock()
        self._last_draw = -math.inf
        self._last_tenth = -1
        self._width = 0
        self._done = 0
        self._total: int | None = None
        self._finished = False
        self._started_drawing = False

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def __call__(self, done: int, total: int | None) -> None:
        self._done, self._total = done, total
        self._started_drawing = True
        now = self._clock()
        if self._live:
            if now - self._last_draw >= self._redraw:
                self._draw_live(now)
        elif total:
            tenth = min(10, done * 10 // total)
            if tenth > self._last_tenth:
                self._last_tenth = tenth
                self._print_line(now)
        elif now - self._last_draw >= self._line_interval:
            self._print_line(now)

    def finish(self) -> None:
        """Draw the final state and end the line; later calls (or no progress) draw nothing."""
        if self._finished:
            return
        self._finished = True
        if not self._started_drawing:
            return  # nothing was transferred: no empty bar
        now = self._clock()
        if self._live:
            self._draw_live(now)
            self._stream.write("\n")
        elif self._total is None or self._last_tenth < 10:
            self._print_line(now)
        self._stream.flush()

    def _text(self, now: float) -> str:
        return self._label + render_line(self._done, self._total, now - self._started)

    def _draw_live(self, now: float) -> None:
        self._last_draw = now
        text = self._text(now)
        # Pad over what a longer previous line left behind.
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()

    def _print_line(self, now: float) -> None:
        self._last_draw = now
        self._stream.write(self._text(now) + "\n")
        self._stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False
