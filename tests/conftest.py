"""Shared fixtures: the asyncio backend, a running fake server, a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis_server import RedisServer, running_redis
from support import FAST_RETRY

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp runs on asyncio only.
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTransactionLink]:
    """A fresh fake API (with its fake S3 and webhook side) on loopback, per test."""
    async with FakeTransactionLink() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole run (started on first use, stopped at the end)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the suite's redis-server, emptied before each test that asks for it."""
    redis_server.start()  # a test may have stopped it to see what happens when Redis is down
    redis_server.flush()
    return redis_server.url


@pytest.fixture
async def tl(fake: FakeTransactionLink) -> AsyncIterator[TransactionLink]:
    """A client of `fake` with its organization token, retrying without real backoff."""
    async with TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    ) as client:
        yield client
