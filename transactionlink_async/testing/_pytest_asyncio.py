"""The pytest plugin's async fixtures as pytest-asyncio runs them (registered only with it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._fixture_support import open_client, running_fake

if TYPE_CHECKING:
    from .._client import TransactionLink
    from ._server import FakeTransactionLink

F = TypeVar("F", bound=Callable[..., Any])


class FixtureDecorator(Protocol):
    """`pytest_asyncio.fixture` used bare, as a decorator."""

    def __call__(self, function: F, /) -> F: ...


def asyncio_fixtures(fixture: FixtureDecorator) -> object:
    """A plugin object with the fixtures, decorated by pytest-asyncio's `fixture`.

    pytest-asyncio is never imported here: it is running already when this is called.
    """

    class AsyncioFixtures:
        @fixture
        async def _transactionlink_fake_asyncio(
            self, transactionlink_fake_options: dict[str, Any]
        ) -> AsyncIterator[FakeTransactionLink]:
            async with running_fake(transactionlink_fake_options) as fake:
                yield fake

        @fixture
        async def _transactionlink_client_asyncio(
            self, transactionlink_fake: FakeTransactionLink
        ) -> AsyncIterator[TransactionLink]:
            async with open_client(transactionlink_fake) as tl:
                yield tl

    return AsyncioFixtures()
