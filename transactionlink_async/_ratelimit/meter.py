"""Counts of recent events (accepted answers) in coarse time slots: bounded, on a caller's clock."""

from __future__ import annotations

from collections import deque

__all__ = ["EventCounter"]


class EventCounter:
    """How many events happened since a moment within the last `window` seconds.

    Events are kept as counts per slot of `window / slots` seconds, so memory stays the
    same however many events come; a count is exact to one slot. Adding one to the
    current slot is a comparison and an increment: it is on the path of every answer.
    """

    def __init__(self, window: float, slots: int = 20) -> None:
        self._window = window
        self._width = window / slots
        self._closed: deque[tuple[float, int]] = deque()  # (slot start, count), oldest first
        self._start = -float("inf")
        self._end = -float("inf")
        self._count = 0

    def add(self, now: float) -> None:
        if self._start <= now < self._end:
            self._count += 1
            return
        if self._count:
            self._closed.append((self._start, self._count))
        self._start = now - now % self._width
        self._end = self._start + self._width
        self._count = 1
        while self._closed and self._closed[0][0] < self._start - self._window:
            self._closed.popleft()

    def since(self, moment: float) -> int:
        """Events in the slots that began at `moment` or later (at most `window` ago)."""
        first = moment - self._width
        count = sum(n for start, n in self._closed if start >= first)
        return count + (self._count if self._start >= first else 0)
