"""Shared fixtures: the asyncio backend, a running fake server, and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

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
