"""Log lines a flood could repeat: one per interval at their level, the others at DEBUG."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs the first message of each `interval` seconds at its level, the rest at DEBUG.

    Forged webhook deliveries cost an attacker nothing; one log line each at WARNING would
    let them fill the application's logs. The next message logged at its level says how
    many were lowered to DEBUG since the previous one.
    """

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._clock = clock
        self._next: float | None = None
        #: Messages logged at DEBUG instead since the last one at the level.
        self.suppressed = 0

    def log(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self.suppressed += 1
            self._logger.debug(message, *args, stacklevel=2)
            return
        self._next = now + self._interval
        if self.suppressed:
            message += " (%d more like it since the previous one were logged at DEBUG)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self._logger.log(self._level, message, *args, stacklevel=2)
