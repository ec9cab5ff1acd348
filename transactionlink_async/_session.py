"""The one aiohttp session factory (API and downloads), its settings, and aiohttp errors mapped."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import attrs

from ._deadline import watchdog_supported
from ._retry import Failure
from ._validate import check_number
from .errors import ClientClosedError

__all__ = [
    "LazySession",
    "NoAnswer",
    "SessionSettings",
    "Timeouts",
    "describe",
    "no_answer",
    "read_at_most",
]


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None:
        # Infinity is refused too (aiohttp's timers overflow on it): None means no limit.
        check_number(f"Timeouts.{attribute.name} (None for no limit)", value, above=0)


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-attempt limits of API calls, in seconds (None: no limit)."""

    #: Opening a connection, including waiting for a free one in the pool.
    connect: float | None = attrs.field(default=10.0, validator=_optional_positive)
    #: Idle time between bytes of an answer (the first byte may take `connect` longer
    #: when the connection was ready at once).
    read: float | None = attrs.field(default=30.0, validator=_optional_positive)
    #: One attempt of one API call, start to finish.
    total: float | None = attrs.field(default=60.0, validator=_optional_positive)

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.total, connect=self.connect, sock_read=self.read)

    def watched(self) -> bool:
        """Whether the transport's watchdog can enforce `total` and `read` for aiohttp.

        Without a connect limit the first byte's wait could not be bounded apart from the
        pool wait: aiohttp's own timers keep `read` exact then.
        """
        return watchdog_supported and (self.read is None or self.connect is not None)


@attrs.frozen(kw_only=True)
class SessionSettings:
    """What every session of one client shares: pool size, User-Agent and time limits."""

    max_connections: int
    user_agent: str
    timeouts: Timeouts


class NoAnswer(Exception):
    """An attempt ended without an HTTP answer; `failure` says whether it may have arrived."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure


def describe(exc: BaseException) -> str:
    """A short description of a transport failure, free of URLs and headers."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"could not connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer's body broke off"
    return type(exc).__name__


def no_answer(exc: aiohttp.ClientError | asyncio.TimeoutError) -> NoAnswer:
    """The NoAnswer for an aiohttp failure: NOT_SENT only when no connection was opened."""
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        # The connection was never opened: the request provably did not leave.
        return NoAnswer(Failure.NOT_SENT, describe(exc))
    return NoAnswer(Failure.NO_ANSWER, describe(exc))


async def read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """A body read to its end or to `limit` bytes, whichever comes first.

    One `content.read(limit)` returns only what has arrived so far: an error body sent in
    two pieces (or chunked) would lose its second half, and with it the details.
    """
    parts: list[bytes] = []
    held = 0
    while held < limit:
        part = await content.read(limit - held)
        if not part:
            break
        parts.append(part)
        held += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class LazySession:
    """One aiohttp ClientSession, made inside the running loop at first use and kept to it.

    It carries no credentials (they go on each request, so nothing can leak to another
    host), no cookies, and never resends a request on its own.
    """

    def __init__(
        self,
        settings: SessionSettings,
        *,
        timeout: aiohttp.ClientTimeout,
        **options: Any,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._options = options
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def settings(self) -> SessionSettings:
        return self._settings

    def get(self) -> aiohttp.ClientSession:
        """The session, made now if need be; ClientClosedError once closed."""
        if self._closed:
            # A call still running when the client closed must not open a new session.
            raise ClientClosedError("this TransactionLink client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._settings.max_connections, limit_per_host=0
                ),
                timeout=self._timeout,
                headers={"User-Agent": self._settings.user_agent},
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                **self._options,
            )
            disable_hidden_resend(session)
            self._session = session
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this TransactionLink client was first used in another event loop; "
                "create one client per loop"
            )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def disable_hidden_resend(session: aiohttp.ClientSession) -> None:
    """Stop aiohttp from resending an idempotent request once on a dropped keep-alive.

    Our RetryPolicy (and a download's attempt count) must own every attempt. aiohttp has
    no public switch for it; the suite fails if this private attribute disappears.
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
