"""What the pytest fixtures run, under anyio's plugin or pytest-asyncio: a fake, a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import TransactionLink
    from ._server import FakeTransactionLink

__all__ = ["open_client", "running_fake"]


@asynccontextmanager
async def running_fake(options: dict[str, Any]) -> AsyncIterator[FakeTransactionLink]:
    """The fake, started and stopped around the test."""
    from ._server import FakeTransactionLink

    async with FakeTransactionLink(**options) as fake:
        yield fake


@asynccontextmanager
async def open_client(fake: FakeTransactionLink) -> AsyncIterator[TransactionLink]:
    """A client of `fake`, closed after the test."""
    from .._auth import OrganizationToken
    from .._client import TransactionLink

    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
        yield tl
