"""The pytest plugin's async fixtures as pytest-asyncio runs them (registered only with it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest_asyncio

from .pytest_plugin import open_client, running_fake

if TYPE_CHECKING:
    from .._client import TransactionLink
    from ._server import FakeTransactionLink

F = TypeVar("F", bound=Callable[..., Any])

# Typed alike whichever pytest-asyncio version (and typing) is installed.
fixture = cast("Callable[[F], F]", pytest_asyncio.fixture)


@fixture
async def _transactionlink_fake_asyncio(
    transactionlink_fake_options: dict[str, Any],
) -> AsyncIterator[FakeTransactionLink]:
    async with running_fake(transactionlink_fake_options) as fake:
        yield fake


@fixture
async def _transactionlink_client_asyncio(
    transactionlink_fake: FakeTransactionLink,
) -> AsyncIterator[TransactionLink]:
    async with open_client(transactionlink_fake) as tl:
        yield tl
