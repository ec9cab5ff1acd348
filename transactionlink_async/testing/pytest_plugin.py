"""pytest fixtures for code that uses TransactionLink: a running fake API and a client of it.

Installed as a pytest plugin: `transactionlink_fake` and `transactionlink_client` work in
async tests run by anyio's plugin (`@pytest.mark.anyio`) or by pytest-asyncio
(`@pytest.mark.asyncio`, or its auto mode). Override `transactionlink_fake_options` to
configure the fake. Importing this module is cheap: the fake is imported by the fixtures.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import pytest

from ._fixture_support import open_client, running_fake

if TYPE_CHECKING:
    from .._client import TransactionLink
    from ._server import FakeTransactionLink

__all__ = [
    "pytest_configure",
    "transactionlink_client",
    "transactionlink_fake",
    "transactionlink_fake_options",
]


@pytest.fixture
def transactionlink_fake_options() -> dict[str, Any]:
    """Keyword arguments for `FakeTransactionLink(...)`; override this fixture to set some."""
    return {}


@pytest.fixture
def transactionlink_fake(request: pytest.FixtureRequest) -> FakeTransactionLink:
    """A running `FakeTransactionLink` on loopback, fresh for each test."""
    return cast("FakeTransactionLink", request.getfixturevalue(_runner(request, "fake")))


@pytest.fixture
def transactionlink_client(request: pytest.FixtureRequest) -> TransactionLink:
    """A `TransactionLink` pointed at `transactionlink_fake` (organization token), closed after."""
    return cast("TransactionLink", request.getfixturevalue(_runner(request, "client")))


def _runner(request: pytest.FixtureRequest, kind: str) -> str:
    """Which async fixture runs in the test's event loop: anyio's or pytest-asyncio's."""
    if "anyio_backend" in request.fixturenames:
        backend = request.getfixturevalue("anyio_backend")
        name = backend if isinstance(backend, str) else backend[0]
        if name != "asyncio":
            pytest.fail(
                f"transactionlink_{kind} runs on asyncio only (aiohttp), not on {name}: "
                "define an `anyio_backend` fixture returning 'asyncio'",
                pytrace=False,
            )
        return f"_transactionlink_{kind}_anyio"
    if request.node.get_closest_marker("asyncio") is not None and _pytest_asyncio_on(
        request.config
    ):
        return f"_transactionlink_{kind}_asyncio"
    pytest.fail(
        f"transactionlink_{kind} needs an async test run by anyio's pytest plugin "
        "(@pytest.mark.anyio) or by pytest-asyncio (@pytest.mark.asyncio)",
        pytrace=False,
    )


@pytest.fixture
async def _transactionlink_fake_anyio(
    transactionlink_fake_options: dict[str, Any],
) -> AsyncIterator[FakeTransactionLink]:
    async with running_fake(transactionlink_fake_options) as fake:
        yield fake


@pytest.fixture
async def _transactionlink_client_anyio(
    transactionlink_fake: FakeTransactionLink,
) -> AsyncIterator[TransactionLink]:
    async with open_client(transactionlink_fake) as tl:
        yield tl


def _pytest_asyncio_on(config: pytest.Config) -> bool:
    # Registered as "asyncio" by its entry point, or under its module's name by `-p`.
    module = sys.modules.get("pytest_asyncio.plugin")
    return module is not None and config.pluginmanager.is_registered(module)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio runs only the fixtures it was told about: they are added when it is on.
    if _pytest_asyncio_on(config):
        from ._pytest_asyncio import asyncio_fixtures

        fixture = sys.modules["pytest_asyncio"].fixture
        config.pluginmanager.register(asyncio_fixtures(fixture), "transactionlink-asyncio-fixtures")
