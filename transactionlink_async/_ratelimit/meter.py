"""Counts of recent events (accepted answers) in coarse time slots: bounded, on a caller's clock."""

from __future__ import annotations

from collections import deque

__all__ = ["EventCounter"]


class EventCounter:
    """How many events happened since a moment within the last `window` seconds.

    Events are kept as counts per slot of `window / slots` seconds, so memory stays the
    same however many events come; a count is exact to one slot.
    """

    def __init__(self, window: float, slots: int = 20) -> None:
        self._window = window
        self._width = window / slots
        self._slots: deque[list[float]] = deque()  # [slot start, count], oldest first

    def add(self, now: float) -> None:
        slot = now - now % self._width
        if self._slots and self._slots[-1][0] >= slot:
            self._slots[-1][1] += 1
        else:
            self._slots.append([slot, 1])
            while self._slots[0][0] < slot - self._window:
                self._slots.popleft()

    def since(self, moment: float) -> int:
        """Events in the slots that began at `moment` or later (at most `window` ago)."""
        return int(sum(count for start, count in self._slots if start >= moment - self._width))
