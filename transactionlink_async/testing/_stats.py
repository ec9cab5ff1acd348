"""Running request counts per route, kept whole however much of the journal is trimmed."""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["RouteStats"]


class RouteStats:
    """Requests seen, in flight, at their peak and answered (per status), by "METHOD /route"."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()
        self.answers: dict[str, Counter[str]] = {}

    def begin(self, key: str) -> None:
        self.requests[key] += 1
        self.in_flight[key] += 1
        if self.in_flight[key] > self.peak_in_flight[key]:
            self.peak_in_flight[key] = self.in_flight[key]

    def finish(self, key: str, status: int | None) -> None:
        self.in_flight[key] -= 1
        if status is not None:
            self.answers.setdefault(key, Counter())[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "peak_in_flight": dict(self.peak_in_flight),
            "answers": {key: dict(counts) for key, counts in self.answers.items()},
        }
