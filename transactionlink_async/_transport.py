"""The API's HTTP transport: one aiohttp session, timeouts, and aiohttp errors mapped to ours."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
import yarl

from ._retry import Failure
from ._watchdog import Attempt, Watchdog, watchdog_supported
from .errors import ClientClosedError

__all__ = ["BodyTooLarge", "NoAnswer", "RawResponse", "Timeouts", "Transport"]

#: How much of an error answer's body is kept (enough for any ErrorResponse).
ERROR_BODY_LIMIT = 64 * 1024


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"Timeouts.{attribute.name} must be > 0 or None, got {value!r}")


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


@attrs.frozen
class RawResponse:
    """An HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class NoAnswer(Exception):
    """An attempt ended without an HTTP answer; `failure` says whether it may have arrived."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure


class BodyTooLarge(Exception):
    """The answer's body is larger than the caller allowed."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.size = size
        self.limit = limit


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


class Transport:
    """Owns the API's aiohttp session; made lazily inside the running loop."""

    def __init__(
        self,
        *,
        max_connections: int,
        timeouts: Timeouts,
        user_agent: str,
        watchdog: bool | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._timeouts = timeouts
        self._watchdog: Watchdog | None = None
        if timeouts.watched() if watchdog is None else watchdog:
            # aiohttp keeps only the connect limit; the watchdog holds total and read.
            read = timeouts.read
            self._watchdog = Watchdog(
                total=timeouts.total,
                idle=read,
                # aiohttp starts the read limit once the request is written; the watchdog
                # cannot see that moment, so it allows the connect limit on top.
                first_idle=None if read is None else read + (timeouts.connect or 0.0),
            )
            self._client_timeout = aiohttp.ClientTimeout(
                total=None, connect=timeouts.connect, sock_read=None
            )
        else:
            self._client_timeout = timeouts.client_timeout()
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

    @property
    def user_agent(self) -> str:
        return self._user_agent

    @property
    def max_connections(self) -> int:
        return self._max_connections

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._closed:
            # A call still running when the client closed must not open a new session.
            raise ClientClosedError("this TransactionLink client is closed; create a new one")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._client_timeout,
                # No credentials here: they go on each request, so nothing can leak elsewhere.
                headers={"User-Agent": self._user_agent},
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
            # aiohttp silently resends an idempotent request once on a dropped keep-alive
            # connection; our RetryPolicy must own every attempt, so that count is exact.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this TransactionLink client was first used in another event loop; "
                "create one client per loop"
            )
        return self._session

    async def request(
        self,
        method: str,
        url: yarl.URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        max_body: int | None = None,
    ) -> RawResponse:
        """Send once; raise NoAnswer when no complete answer came, BodyTooLarge past max_body."""
        session = self._get_session()
        watchdog = self._watchdog
        attempt = None if watchdog is None else watchdog.start()
        try:
            async with session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            ) as response:
                if watchdog is not None:
                    watchdog.progress(attempt)
                if response.status >= 400:
                    # An error answer is never "the result": read enough to explain it.
                    data = await response.content.read(ERROR_BODY_LIMIT)
                elif watchdog is None:
                    data = await _read_body(response, max_body)
                else:
                    data = await _read_watched(response, max_body, watchdog, attempt)
                return RawResponse(response.status, response.headers, data)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never opened: the request provably did not leave.
            raise NoAnswer(Failure.NOT_SENT, describe(exc)) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise NoAnswer(Failure.NO_ANSWER, describe(exc)) from exc
        except asyncio.CancelledError:
            if watchdog is not None and watchdog.timed_out(attempt):
                raise NoAnswer(Failure.NO_ANSWER, "timed out") from None
            raise
        finally:
            if watchdog is not None:
                watchdog.finish(attempt)

    async def aclose(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _read_body(response: aiohttp.ClientResponse, max_body: int | None) -> bytes:
    if max_body is None:
        return await response.read()
    length = response.content_length
    if length is not None and length > max_body:
        raise BodyTooLarge(length, max_body)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge(None, max_body)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_watched(
    response: aiohttp.ClientResponse,
    max_body: int | None,
    watchdog: Watchdog,
    attempt: Attempt | None,
) -> bytes:
    """The body, chunk by chunk as it arrives, telling the watchdog of each one."""
    if max_body is not None:
        length = response.content_length
        if length is not None and length > max_body:
            raise BodyTooLarge(length, max_body)
    content = response.content
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        watchdog.progress(attempt)
        size += len(chunk)
        if max_body is not None and size > max_body:
            raise BodyTooLarge(None, max_body)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
