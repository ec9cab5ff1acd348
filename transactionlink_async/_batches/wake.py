"""Per-execution wake-up signals: a webhook (or anything else) can end a waiter's sleep early."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio

__all__ = ["WakeRegistry"]


class WakeRegistry:
    """Waiters register an event per execution id; `wake(id)` sets every event for that id.

    Costs nothing per waiter but one event, and nothing at all for ids nobody waits on.
    """

    def __init__(self) -> None:
        self._events: dict[str, set[anyio.Event]] = {}

    @contextmanager
    def listen(self, execution_id: str) -> Iterator[anyio.Event]:
        """Register a fresh event for `execution_id` for the duration of the block."""
        event = anyio.Event()
        waiters = self._events.setdefault(execution_id, set())
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters:
                del self._events[execution_id]

    def wake(self, execution_id: str) -> int:
        """Wake everyone waiting on `execution_id`; returns how many were waiting."""
        waiters = self._events.get(execution_id, ())
        for event in waiters:
            event.set()
        return len(waiters)

    def wake_all(self) -> int:
        """Wake every waiter (news may have been missed); returns how many were waiting."""
        woken = 0
        for waiters in self._events.values():
            for event in waiters:
                event.set()
            woken += len(waiters)
        return woken

    def waiting(self, execution_id: str) -> int:
        return len(self._events.get(execution_id, ()))

    def waiting_ids(self) -> list[str]:
        """The executions someone waits on now."""
        return list(self._events)
