"""The shared token: one renewal for every backend, the 401 rule, leases that lapse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from redis_server import RedisServer

from transactionlink_async.coordination._breaker import BreakerPolicy
from transactionlink_async.coordination._connection import connect
from transactionlink_async.coordination._crypto import CredentialKeys
from transactionlink_async.coordination._guard import CoordinationUnavailable, Guard
from transactionlink_async.coordination._keys import Keys
from transactionlink_async.coordination._redis_tokens import RedisTokenStore
from transactionlink_async.coordination._token_share import FreshToken, TokenShare

from .conftest import Join, eventually

pytestmark = pytest.mark.anyio

KEY, SECRET = "key_share", "secret-share-0123456789"


class Api:
    """Stands in for /auth/authorize and /auth/refresh: counts, and spends refresh tokens once."""

    def __init__(self, *, lifetime: float | None = 3600.0, delay: float = 0.05) -> None:
        self.lifetime = lifetime
        self.delay = delay
        self.calls = 0
        self.spent: list[str | None] = []
        self.live_refresh: set[str] = set()
        self.gate: anyio.Event | None = None

    async def fetch(self, refresh: str | None) -> FreshToken:
        self.calls += 1
        self.spent.append(refresh)
        if refresh is not None:
            # Single-use, as the vendor's may be: spending one twice is the bug we guard against.
            assert refresh in self.live_refresh, f"refresh token spent twice: {refresh}"
            self.live_refresh.discard(refresh)
        if self.gate is not None:
            await self.gate.wait()
        await anyio.sleep(self.delay)
        n = self.calls
        self.live_refresh.add(f"refresh-{n}")
        return FreshToken(
            access=f"access-{n}",
            refresh=f"refresh-{n}",
            lifetime=self.lifetime,
            obtained=time.monotonic(),
        )


Shares = Callable[..., TokenShare]


@pytest.fixture
async def shares(redis_url: str) -> AsyncIterator[Shares]:
    """`shares(lease=..., secret=...)`: a TokenShare with its own Redis connection, as in
    another process."""
    clients: list[Any] = []

    def make(*, lease: float = 5.0, secret: str = SECRET, timeout: float = 2.0) -> TokenShare:
        client = connect(redis_url, timeout=timeout)
        clients.append(client)
        guard = Guard("test", timeout=timeout, policy=BreakerPolicy(first=0.1, longest=0.2))
        store = RedisTokenStore(client, guard, Keys("transactionlink"), CredentialKeys(KEY, secret))
        return TokenShare(store, lease=lease)

    yield make
    for client in clients:
        await client.aclose()


async def test_many_backends_needing_a_token_at_once_get_one_from_one_authorize(
    shares: Shares,
) -> None:
    api = Api()
    backends = [shares() for _ in range(5)]
    tokens = await asyncio.gather(*(b.get(api.fetch) for b in backends for _ in range(3)))
    assert api.calls == 1
    assert api.spent == [None]  # an authorize: nothing to refresh yet
    assert {t.access for t in tokens} == {"access-1"}
    assert {t.generation for t in tokens} == {1}
    assert all(t.expires_in is not None and 3590 < t.expires_in <= 3600 for t in tokens)


async def test_a_401_renews_once_for_all_and_later_refusals_adopt_the_new_token(
    shares: Shares,
) -> None:
    api = Api()
    a, b, c = shares(), shares(), shares()
    first = await a.get(api.fetch)
    renewed = await b.get(api.fetch, refused=first.access)
    assert renewed.access == "access-2"
    assert renewed.generation == 2
    assert api.spent == [None, "refresh-1"]
    # c's call used the old token too: it adopts the new one, nothing is sent.
    adopted = await c.get(api.fetch, refused=first.access)
    assert adopted.access == "access-2"
    assert api.calls == 2


async def test_concurrent_refusals_of_one_token_spend_its_refresh_token_once(
    shares: Shares,
) -> None:
    api = Api()
    backends = [shares() for _ in range(4)]
    first = await backends[0].get(api.fetch)
    tokens = await asyncio.gather(*(b.get(api.fetch, refused=first.access) for b in backends))
    assert api.calls == 2
    assert {t.access for t in tokens} == {"access-2"}


async def test_a_token_near_its_end_is_renewed_once_by_whoever_needs_it_first(
    shares: Shares,
) -> None:
    api = Api(lifetime=0.6)
    a, b = shares(), shares()
    first = await a.get(api.fetch)
    assert (await b.get(api.fetch)).access == first.access
    await anyio.sleep(0.35)  # past half its life: renew
    tokens = await asyncio.gather(a.get(api.fetch), b.get(api.fetch))
    assert api.calls == 2
    assert {t.access for t in tokens} == {"access-2"}


async def test_the_others_wait_out_the_lease_of_a_renewer_that_died(
    shares: Shares, raw: Any
) -> None:
    api = Api()
    share = shares()
    await share.get(api.fetch)
    names = [k async for k in raw.scan_iter("transactionlink:token:*")]
    (entry,) = [n for n in names if not n.endswith(b":lease")]
    # A renewer that took the lease and then died (kill -9): nobody releases it.
    await raw.set(entry + b":lease", b"dead", px=400)
    started = time.monotonic()
    token = await share.get(api.fetch, refused="access-1")
    assert time.monotonic() - started >= 0.3
    assert token.access == "access-2"
    assert api.calls == 2


async def test_the_lease_is_kept_alive_while_a_slow_renewal_runs(shares: Shares) -> None:
    api = Api(delay=1.0)
    a, b = shares(lease=0.3), shares(lease=0.3)
    tokens = await asyncio.gather(a.get(api.fetch), b.get(api.fetch))
    assert api.calls == 1
    assert tokens[0].access == tokens[1].access == "access-1"


async def test_a_cancelled_renewal_lets_the_lease_go_at_once(shares: Shares, raw: Any) -> None:
    api = Api()
    api.gate = anyio.Event()
    a, b = shares(lease=30), shares(lease=30)
    with anyio.move_on_after(0.3):
        await a.get(api.fetch)
    assert [k async for k in raw.scan_iter("transactionlink:token:*:lease")] == []
    api.gate.set()
    started = time.monotonic()
    assert (await b.get(api.fetch)).access == "access-2"
    assert time.monotonic() - started < 1


async def test_a_failed_renewal_raises_and_the_next_caller_tries_again(shares: Shares) -> None:
    api = Api()
    share = shares()

    async def refused(refresh: str | None) -> FreshToken:
        raise PermissionError("wrong secret")

    with pytest.raises(PermissionError):
        await share.get(refused)
    assert (await shares().get(api.fetch)).access == "access-1"


async def test_an_entry_it_cannot_read_is_renewed_over(shares: Shares, raw: Any) -> None:
    api = Api()
    await shares().get(api.fetch)
    names = [k async for k in raw.scan_iter("transactionlink:token:*")]
    (entry,) = [n for n in names if not n.endswith(b":lease")]
    await raw.hset(entry, "v", b"garbage-garbage-garbage")
    token = await shares().get(api.fetch)
    assert token.access == "access-2"
    assert token.generation == 2


async def test_other_credentials_never_see_the_token(shares: Shares) -> None:
    api = Api()
    await shares().get(api.fetch)
    other = await shares(secret="another-secret-0123456789").get(api.fetch)
    assert other.access == "access-2"
    assert other.generation == 1


async def test_without_redis_nothing_is_fetched_and_the_caller_renews_alone(
    shares: Shares, redis_server: RedisServer
) -> None:
    api = Api()
    share = shares(timeout=0.25)
    redis_server.stop()
    try:
        with pytest.raises(CoordinationUnavailable):
            await share.get(api.fetch)
    finally:
        redis_server.start()
    assert api.calls == 0


async def test_a_token_renewed_while_redis_fails_is_still_returned(
    shares: Shares, redis_server: RedisServer
) -> None:
    api = Api()
    api.gate = anyio.Event()
    share = shares(timeout=0.25)
    task = asyncio.ensure_future(share.get(api.fetch))
    await eventually(lambda: api.calls)
    redis_server.stop()
    try:
        api.gate.set()
        token = await task
    finally:
        redis_server.start()
    assert token.access == "access-1"
    assert token.generation is None  # not shared: this process's own


async def test_backends_of_one_coordination_share_the_token_too(join: Join) -> None:
    api = Api()
    one = join()
    a = one.member.tokens_for(KEY, SECRET)
    b = one.member.tokens_for(KEY, SECRET)
    assert a is not None
    assert b is not None
    tokens = await asyncio.gather(a.get(api.fetch), b.get(api.fetch))
    assert api.calls == 1
    assert tokens[0].access == tokens[1].access
