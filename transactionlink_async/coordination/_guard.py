"""Every Redis call goes through here: a short timeout, a circuit breaker, one WARNING a minute."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from .._lograte import RateLimitedLog
from ._breaker import (
    BreakerPolicy,
    BreakerState,
    admit,
    after_abandon,
    after_failure,
    after_success,
)
from ._connection import require_redis

__all__ = ["CoordinationUnavailable", "Guard"]

logger = logging.getLogger("transactionlink_async")

T = TypeVar("T")


class CoordinationUnavailable(Exception):
    """Redis could not serve this call (down, slow, or left alone for now): go on locally."""


class Guard:
    """Runs Redis operations for one backend; failures become CoordinationUnavailable.

    A failure opens the breaker: calls then go local at once, without touching the network,
    and one probe per cooldown finds out when Redis is back.
    """

    def __init__(
        self,
        where: str,
        *,
        timeout: float,
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._where = where
        self._timeout = timeout
        self._policy = policy
        self._clock = clock
        self._state = BreakerState()
        self._closed = False
        # One WARNING a minute at most, whichever part of the backend runs into trouble.
        self._warn = RateLimitedLog(logger, logging.WARNING)
        redis_asyncio = require_redis()
        self._failures: tuple[type[BaseException], ...] = (
            redis_asyncio.RedisError,
            OSError,
            TimeoutError,
            asyncio.TimeoutError,
        )

    @property
    def failures(self) -> tuple[type[BaseException], ...]:
        """The exceptions that mean "Redis did not serve this call"."""
        return self._failures

    @property
    def available(self) -> bool:
        """Whether the breaker is closed (the last call to Redis went through)."""
        return self._state.closed

    def close(self) -> None:
        """Refuse every later call: a straggler must not reopen a connection after close."""
        self._closed = True

    async def call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation()`'s result, or CoordinationUnavailable; cancellation passes through."""
        if self._closed:
            raise CoordinationUnavailable(f"{what}: the coordination backend is closed")
        admission = admit(self._state, self._clock())
        self._state = admission.state
        if not admission.allowed:
            raise CoordinationUnavailable(f"{what}: Redis is left alone for now")
        try:
            with anyio.fail_after(self._timeout):
                result = await operation()
        except self._failures as exc:
            self.failed(what, exc, probe=admission.probe)
            raise CoordinationUnavailable(f"{what}: {type(exc).__name__}") from exc
        except BaseException:
            # Cancelled (or a bug): says nothing about Redis, so the next call may probe.
            self._state = after_abandon(self._state, probe=admission.probe)
            raise
        self.succeeded()
        return result

    def failed(self, what: str, exc: BaseException, *, probe: bool = False) -> None:
        """Record a failure seen by a call, or by a long-lived task such as the subscriber."""
        was_closed = self._state.closed
        self._state = after_failure(self._state, self._clock(), probe=probe, policy=self._policy)
        if was_closed:
            # The exception's text is left out: it may quote the server's address or more.
            self._warn.log(
                "Redis coordination at %s is unavailable (%s while %s): each client goes on "
                "with its own token, wake-ups and rate limits, and tries Redis again by itself",
                self._where,
                type(exc).__name__,
                what,
            )

    def succeeded(self) -> None:
        """Redis answered: close the breaker (and say so, once, if it was open)."""
        if not self._state.closed:
            logger.info("Redis coordination at %s answers again", self._where)
        self._state = after_success(self._state)
