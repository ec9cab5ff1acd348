"""Background tasks end when closed, even when a library loses the cancellation once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from transactionlink_async.coordination._breaker import BreakerPolicy
from transactionlink_async.coordination._connection import connect
from transactionlink_async.coordination._crypto import CredentialKeys
from transactionlink_async.coordination._guard import Guard
from transactionlink_async.coordination._keys import Keys
from transactionlink_async.coordination._redis_tokens import RedisTokenStore
from transactionlink_async.coordination._subscriber import Subscriber
from transactionlink_async.coordination._tasks import cancel_and_wait
from transactionlink_async.coordination._token_share import (
    FreshToken,
    StoreView,
    TokenShare,
    TokenStore,
)

pytestmark = pytest.mark.anyio


class LosesCancellations:
    """A task body looping forever that drops its first `times` cancellations, as
    asyncio.wait_for does on Python 3.10 and 3.11 when what it waits for finishes together
    with the cancellation."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.lost = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if self.times == 0:
                    raise
                self.times -= 1
                self.lost.set()


async def test_a_task_that_loses_cancellations_is_cancelled_until_it_ends() -> None:
    body = LosesCancellations(times=3)
    task = asyncio.ensure_future(body.run())
    await asyncio.sleep(0)
    with anyio.fail_after(5):
        await cancel_and_wait(task)
    assert body.times == 0
    assert task.cancelled()


async def test_the_tasks_own_failure_is_not_raised_by_closing_it() -> None:
    async def fails() -> None:
        raise LookupError("a bug in the task")

    task = asyncio.ensure_future(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    with pytest.raises(LookupError):
        task.result()


async def test_the_closers_own_cancellation_goes_on() -> None:
    body = LosesCancellations(times=1_000_000)
    task = asyncio.ensure_future(body.run())
    closer = asyncio.ensure_future(cancel_and_wait(task))
    with anyio.fail_after(5):
        await body.lost.wait()
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    body.times = 0
    with anyio.fail_after(5):
        await cancel_and_wait(task)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    client = connect(redis_url, timeout=2.0)
    yield client
    await client.aclose()


async def test_closing_the_subscriber_ends_it_when_a_cancellation_was_lost(
    redis_client: Any,
) -> None:
    subscribed, lost = asyncio.Event(), asyncio.Event()

    async def on_subscribed(first: bool) -> None:
        subscribed.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            lost.set()  # dropped, as redis-py's writes (asyncio.wait_for) can drop one

    subscriber = Subscriber(
        redis_client,
        Guard("test", timeout=2.0, policy=BreakerPolicy()),
        {"test-channel": lambda data: None},
        on_subscribed=on_subscribed,
        timeout=2.0,
        backoff=BreakerPolicy(),
    )
    subscriber.start()
    with anyio.fail_after(5):
        await subscribed.wait()
    # Listening would go on forever (a ping every few seconds) after the first cancellation.
    with anyio.fail_after(3):
        await subscriber.aclose()
    assert lost.is_set()
    assert not subscriber.subscribed


class ExtendLosesACancellation:
    """The real Redis token store, but its first lease extension drops the cancellation
    that arrives while it is under way (as a redis-py write can)."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store
        self.extending = asyncio.Event()
        self.lost = asyncio.Event()
        #: Set when the test is failing: the lease keeper then stops by itself.
        self.give_up = False

    async def read(self) -> StoreView:
        return await self._store.read()

    async def acquire(self, lease: float) -> str | None:
        return await self._store.acquire(lease)

    async def extend(self, owner: str, lease: float) -> bool:
        if self.give_up:
            return False
        if not self.lost.is_set():
            self.extending.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.lost.set()
        return await self._store.extend(owner, lease)

    async def publish(self, owner: str, expected: int, token: FreshToken) -> int | None:
        return await self._store.publish(owner, expected, token)

    async def release(self, owner: str) -> None:
        await self._store.release(owner)


async def test_a_renewal_ends_when_keeping_its_lease_lost_a_cancellation(
    redis_client: Any,
) -> None:
    guard = Guard("test", timeout=2.0, policy=BreakerPolicy())
    store = ExtendLosesACancellation(
        RedisTokenStore(redis_client, guard, Keys("transactionlink"), CredentialKeys("k", "s"))
    )
    # A short lease: it is extended every 0.1 s while the renewal runs.
    share = TokenShare(store, lease=0.3)

    async def fetch(refresh: str | None) -> FreshToken:
        await store.extending.wait()  # the renewal ends while its lease is being extended
        return FreshToken(access="access", refresh=None, lifetime=60.0, obtained=0.0)

    # (The end of a renewal is shielded from the test's cancellation: wait aside.)
    renewal = asyncio.ensure_future(share.get(fetch))
    done, _ = await asyncio.wait({renewal}, timeout=5)
    store.give_up = True  # a failure, not a hang: a lease keeper still going now stops
    token = await renewal
    assert done, "the renewal did not end: its lease keeper lost the cancellation for good"
    assert token.access == "access"
    assert store.lost.is_set()
