"""What a client holds of a coordination backend: small parts, and the backend's interface."""

from __future__ import annotations

import abc
from collections.abc import Collection
from typing import Protocol, runtime_checkable

from ._token_share import TokenShare

__all__ = ["Coordination", "KnownPauses", "Member", "RateBudget", "WakeNews", "WakeTarget"]


class WakeTarget(Protocol):
    """A client's wake registry, as the backend sees it: news from elsewhere lands here."""

    def wake(self, execution_id: str) -> int:
        """End the sleep of every wait on `execution_id` (each then confirms with a GET)."""
        ...

    def wake_all(self) -> int:
        """End the sleep of every wait (after news may have been missed)."""
        ...

    def waiting_ids(self) -> Collection[str]:
        """The executions waited on now."""
        ...


class RateBudget(Protocol):
    """Request pacing shared by every client of a backend."""

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        """Take one token of `kind`'s bucket; the seconds the caller must wait before sending
        (0.0 = now)."""
        ...

    async def pause(self, kind: str, seconds: float) -> None:
        """Record that the API asked `kind` requests to wait `seconds` (a 429, or 503 with
        Retry-After)."""
        ...

    async def paused_for(self, kind: str) -> float:
        """Seconds left of `kind`'s current pause (0.0 when there is none)."""
        ...


@runtime_checkable
class KnownPauses(Protocol):
    """A RateBudget that also knows its pauses without I/O (both backends here do).

    The client then reads `pause_left` instead of awaiting `paused_for` on every request;
    a budget without it is awaited as before. Both must tell the same pauses: a subclass
    that changes `paused_for` changes `pause_left` alike.
    """

    def pause_left(self, kind: str) -> float:
        """As `RateBudget.paused_for`, at once: seconds left of `kind`'s pause (0.0: none)."""
        ...


class WakeNews(Protocol):
    """Webhook news between clients: told by the one that received it, heard by all."""

    async def announce(self, execution_id: str, status: str | None) -> None:
        """A verified delivery says `execution_id` reached `status`: tell the other clients.

        Never raises because of the backend: news that cannot be passed on is left to
        the waits' polling.
        """
        ...

    async def announced(self, execution_id: str) -> bool:
        """Whether the end of `execution_id` was announced a short while ago (so a wait
        that starts now confirms at once instead of sleeping a poll interval)."""
        ...


class Member(Protocol):
    """One client's share of a backend; `aclose()` when the client closes."""

    @property
    def budget(self) -> RateBudget: ...

    @property
    def news(self) -> WakeNews: ...

    def tokens_for(self, key: str, secret: str) -> TokenShare | None:
        """The shared token of these API credentials, or None: each client keeps its own."""
        ...

    async def aclose(self) -> None: ...


class Coordination(abc.ABC):
    """Where clients meet to act as one: give it to `TransactionLink(coordination=...)`.

    `LocalCoordination` (the default) keeps everything inside the process;
    `RedisCoordination` shares the token, webhook wake-ups and rate limits between every
    process using the same Redis and namespace.
    """

    @abc.abstractmethod
    def join(self, wakeups: WakeTarget) -> Member:
        """A client starts using this backend; `wakeups` is where news for its waits goes."""
