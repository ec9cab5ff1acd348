"""Short-lived notes that an execution's end was announced, so a late wait confirms at once."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MARKER_TTL", "Markers"]

#: How long the news of an end is kept: a wait that starts within this time after the
#: delivery confirms at once; later ones are served by polling, as always.
MARKER_TTL = 60.0


class Markers:
    """Execution ids whose end was announced, each for `ttl` seconds; at most `limit` of them."""

    def __init__(
        self,
        *,
        ttl: float = MARKER_TTL,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        #: id -> when its note expires, oldest first.
        self._until: OrderedDict[str, float] = OrderedDict()

    def note(self, execution_id: str) -> None:
        now = self._clock()
        self._until.pop(execution_id, None)
        self._until[execution_id] = now + self._ttl
        self._drop_stale(now)

    def seen(self, execution_id: str) -> bool:
        until = self._until.get(execution_id)
        return until is not None and self._clock() < until

    def __len__(self) -> int:
        return len(self._until)

    def _drop_stale(self, now: float) -> None:
        # Oldest first, so the expired ones are at the front; a burst beyond `limit` drops
        # the oldest notes early, which costs those waits a poll interval at most.
        while self._until:
            oldest, until = next(iter(self._until.items()))
            if until > now and len(self._until) <= self._limit:
                return
            del self._until[oldest]
