"""Per-execution wake-up signals: a webhook (or anything else) can end a waiter's sleep early."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio

__all__ = ["WakeRegistry", "Wakeable"]


class Wakeable(Protocol):
    """Anything a wake-up can be handed to (an `anyio.Event`, a waiting execution...)."""

    def set(self) -> None: ...


class WakeRegistry:
    """Waiters register per execution id; `wake(id)` tells every waiter of that id.

    Costs nothing per waiter but its registration, and nothing at all for ids nobody
    waits on. It also remembers when the last wake-up came (`last_wake`): waits use it
    to tell that webhooks are flowing.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        # One waiter per id is the rule: it is held as it is, a set only for several.
        self._waiters: dict[str, Wakeable | set[Wakeable]] = {}
        self._clock = clock
        #: When (on `clock`) the last wake-up was handled; None before the first.
        self.last_wake: float | None = None
        self._count = 0

    @property
    def waiters(self) -> int:
        """How many waiters are registered now (several on one execution count each)."""
        return self._count

    def add(self, execution_id: str, waiter: Wakeable) -> None:
        """Tell `waiter` of every wake-up for `execution_id` until it is discarded."""
        held = self._waiters.get(execution_id)
        if held is None:
            self._waiters[execution_id] = waiter
        elif isinstance(held, set):
            if waiter in held:
                return
            held.add(waiter)
        elif held is not waiter:
            self._waiters[execution_id] = {held, waiter}
        else:
            return
        self._count += 1

    def discard(self, execution_id: str, waiter: Wakeable) -> None:
        held = self._waiters.get(execution_id)
        if held is waiter:
            del self._waiters[execution_id]
        elif isinstance(held, set) and waiter in held:
            held.discard(waiter)
            if not held:
                del self._waiters[execution_id]
        else:
            return
        self._count -= 1

    def _of(self, execution_id: str) -> tuple[Wakeable, ...]:
        held = self._waiters.get(execution_id)
        if held is None:
            return ()
        return tuple(held) if isinstance(held, set) else (held,)

    @contextmanager
    def listen(self, execution_id: str) -> Iterator[anyio.Event]:
        """Register a fresh event for `execution_id` for the duration of the block."""
        import anyio  # only here: waits register themselves, without an event

        event = anyio.Event()
        self.add(execution_id, event)
        try:
            yield event
        finally:
            self.discard(execution_id, event)

    def wake(self, execution_id: str) -> int:
        """Wake everyone waiting on `execution_id`; returns how many were waiting."""
        self.last_wake = self._clock()
        waiters = self._of(execution_id)
        for waiter in waiters:
            waiter.set()
        return len(waiters)

    def wake_all(self) -> int:
        """Wake every waiter (news may have been missed); returns how many were waiting."""
        woken = 0
        for execution_id in list(self._waiters):
            for waiter in self._of(execution_id):
                waiter.set()
                woken += 1
        return woken

    def waiting(self, execution_id: str) -> int:
        return len(self._of(execution_id))

    def waiting_ids(self) -> list[str]:
        """The executions someone waits on now."""
        return list(self._waiters)
