"""The API's HTTP transport: one attempt of one request, read whole within its time limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import attrs
import yarl

from ._deadline import Attempt, Watchdog
from ._retry import Failure
from ._session import LazySession, NoAnswer, SessionSettings, no_answer, read_at_most

__all__ = ["BodyTooLarge", "RawResponse", "Transport"]

#: How much of an error answer's body is kept (enough for any ErrorResponse).
ERROR_BODY_LIMIT = 64 * 1024


@attrs.frozen
class RawResponse:
    """An HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class BodyTooLarge(Exception):
    """The answer's body is larger than the caller allowed."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.size = size
        self.limit = limit


class Transport:
    """Owns the API's aiohttp session; made lazily inside the running loop."""

    def __init__(self, settings: SessionSettings, *, watchdog: bool | None = None) -> None:
        timeouts = settings.timeouts
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
            client_timeout = aiohttp.ClientTimeout(
                total=None, connect=timeouts.connect, sock_read=None
            )
        else:
            client_timeout = timeouts.client_timeout()
        self._session = LazySession(settings, timeout=client_timeout)

    @property
    def settings(self) -> SessionSettings:
        return self._session.settings

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
        session = self._session.get()
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
                    data = await read_at_most(response.content, ERROR_BODY_LIMIT)
                elif watchdog is None:
                    data = await _read_body(response, max_body)
                else:
                    data = await _read_watched(response, max_body, watchdog, attempt)
                return RawResponse(response.status, response.headers, data)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise no_answer(exc) from exc
        except asyncio.CancelledError:
            if watchdog is not None and watchdog.timed_out(attempt):
                raise NoAnswer(Failure.NO_ANSWER, "timed out") from None
            raise
        finally:
            if watchdog is not None:
                watchdog.finish(attempt)

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
        await self._session.aclose()


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
