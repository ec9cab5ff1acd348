"""The journal of requests the fake server saw, with the concurrency it saw them at."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._faults import method_matches, path_matches

__all__ = ["Journal", "JournalEntry"]


@dataclass(eq=False)
class JournalEntry:
    """One request as received; `status` is None when no answer went out (dropped)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    status: int | None = None
    started: float = 0.0
    finished: float | None = None
    faults: tuple[str, ...] = ()
    # Event order numbers: monotonic timestamps can tie, these cannot.
    start_seq: int = field(default=0, repr=False)
    end_seq: int | None = field(default=None, repr=False)

    def json(self) -> Any:
        """The request body parsed as JSON."""
        return json.loads(self.body)

    @property
    def in_flight(self) -> bool:
        return self.end_seq is None

    def matches(self, method: str | None, path_glob: str | None) -> bool:
        return method_matches(method, self.method) and path_matches(path_glob, self.path)


class Journal:
    """Appends an entry when a request arrives and closes it when its handling ends.

    With a `limit`, the oldest finished entries are forgotten so a long benchmark run
    does not grow without bound; the counts then cover the entries kept.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("journal limit must be at least 1, or None for no limit")
        self.entries: list[JournalEntry] = []
        self.limit = limit
        self._seq = itertools.count(1)
        # (method, path glob, future) of each `next_request` call still waiting.
        self._waiters: list[tuple[str | None, str | None, asyncio.Future[JournalEntry]]] = []

    def begin(self, method: str, path: str, query: str, headers: dict[str, str]) -> JournalEntry:
        entry = JournalEntry(
            method=method,
            path=path,
            query=query,
            headers=headers,
            started=time.monotonic(),
            start_seq=next(self._seq),
        )
        self.entries.append(entry)
        if self.limit is not None and len(self.entries) > self.limit + self.limit // 2 + 1:
            self._trim(self.limit)
        for method_glob, path_glob, future in self._waiters:
            if not future.done() and entry.matches(method_glob, path_glob):
                future.set_result(entry)
        return entry

    async def next_request(
        self, method: str | None, path_glob: str | None, timeout: float
    ) -> JournalEntry | None:
        """The next matching request to arrive, or None when none does within `timeout`."""
        future: asyncio.Future[JournalEntry] = asyncio.get_running_loop().create_future()
        waiter = (method, path_glob, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiters.remove(waiter)

    def _trim(self, keep: int) -> None:
        # Trimmed in batches (amortised O(1)) and in place: `fake.journal` is this list.
        old, recent = self.entries[:-keep], self.entries[-keep:]
        self.entries[:] = [e for e in old if e.in_flight] + recent

    def finish(self, entry: JournalEntry) -> None:
        entry.finished = time.monotonic()
        entry.end_seq = next(self._seq)

    def requests(
        self, method: str | None = None, path_glob: str | None = None
    ) -> list[JournalEntry]:
        return [e for e in self.entries if e.matches(method, path_glob)]

    def count(self, method: str | None, path_glob: str | None) -> int:
        return len(self.requests(method, path_glob))

    def in_flight(self, method: str | None = None, path_glob: str | None = None) -> int:
        return sum(1 for e in self.requests(method, path_glob) if e.in_flight)

    def max_in_flight(self, method: str | None = None, path_glob: str | None = None) -> int:
        return peak_concurrency(self.requests(method, path_glob))


def peak_concurrency(entries: Iterable[JournalEntry]) -> int:
    """The most entries that were open at the same time."""
    events: list[tuple[int, int]] = []
    for entry in entries:
        events.append((entry.start_seq, 1))
        if entry.end_seq is not None:
            events.append((entry.end_seq, -1))
    current = peak = 0
    for _, delta in sorted(events):
        current += delta
        peak = max(peak, current)
    return peak
