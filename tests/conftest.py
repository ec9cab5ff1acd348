"""Shared fixtures: the asyncio backend, a running fake server, and clients bound to it."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp runs on asyncio only.
    return "asyncio"
