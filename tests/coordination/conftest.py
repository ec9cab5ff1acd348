"""Coordination fixtures: wake targets that record, and Redis backends closed after each test."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import anyio
import pytest

from transactionlink_async.coordination import Member, RedisCoordination


class Target:
    """A WakeTarget that remembers what it was told, with the ids it pretends to wait on."""

    def __init__(self, waiting: Collection[str] = ()) -> None:
        self.woken: list[str] = []
        self.woken_all = 0
        self.waiting = set(waiting)

    def wake(self, execution_id: str) -> int:
        self.woken.append(execution_id)
        return 1

    def wake_all(self) -> int:
        self.woken_all += 1
        return len(self.waiting)

    def waiting_ids(self) -> Collection[str]:
        return self.waiting


async def eventually(check: Callable[[], Any], *, within: float = 5.0) -> None:
    """Return as soon as `check()` (or what it returns, if awaitable) is true; fail after
    `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s: {check}")
        await anyio.sleep(0.01)


class Joined:
    """One RedisCoordination with one member (a stand-in client) and its wake target."""

    def __init__(self, backend: RedisCoordination, member: Member, target: Target) -> None:
        self.backend = backend
        self.member = member
        self.target = target

    async def ready(self, *, within: float = 5.0) -> None:
        """Start listening and wait until subscribed (news sent from now on reaches it)."""
        await self.member.budget.paused_for("x")  # any call starts the subscriber
        await eventually(lambda: self.backend.connected, within=within)


Join = Callable[..., Joined]


@pytest.fixture
async def join(redis_url: str) -> AsyncIterator[Join]:
    """`join(target=None, **options)`: a RedisCoordination on the suite's Redis, one member.

    The timeout is generous by default: a loaded test machine must not turn a slow answer
    into a fallback the test did not ask for.
    """
    joined: list[Joined] = []

    def make(target: Target | None = None, **options: Any) -> Joined:
        options.setdefault("timeout", 2.0)
        backend = RedisCoordination(redis_url, **options)
        target = target or Target()
        one = Joined(backend, backend.join(target), target)
        joined.append(one)
        return one

    yield make
    with anyio.CancelScope(shield=True):
        for one in joined:
            await one.member.aclose()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Any]:
    """A plain redis-py client on the suite's Redis, to look at (or meddle with) its keys."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()
