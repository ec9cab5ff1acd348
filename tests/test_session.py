"""The one session factory: both sessions are built alike, and aiohttp never resends on its own."""

from __future__ import annotations

import aiohttp
import pytest

from transactionlink_async import Timeouts
from transactionlink_async._session import LazySession, SessionSettings
from transactionlink_async.errors import ClientClosedError

pytestmark = pytest.mark.anyio

SETTINGS = SessionSettings(max_connections=3, user_agent="ua-test", timeouts=Timeouts())


async def test_aiohttp_still_has_the_private_switch_for_its_hidden_resend() -> None:
    # aiohttp resends an idempotent request once on a dropped keep-alive connection, behind
    # RetryPolicy's back, unless this attribute is False. If aiohttp renames it, turning the
    # resend off silently does nothing: this test is what notices.
    async with aiohttp.ClientSession() as session:
        assert session._retry_connection is True


async def test_a_lazy_session_turns_the_resend_off_and_carries_the_settings() -> None:
    lazy = LazySession(SETTINGS, timeout=aiohttp.ClientTimeout(total=5), auto_decompress=False)
    session = lazy.get()
    try:
        assert session is lazy.get()
        assert session._retry_connection is False
        assert session.headers["User-Agent"] == "ua-test"
        assert session.auto_decompress is False
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 3
    finally:
        await lazy.aclose()
    assert session.closed
    with pytest.raises(ClientClosedError):
        lazy.get()
