"""The aiohttp session for pre-signed download links: no credentials, bytes exactly as stored."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping

import aiohttp
import yarl

from .._observe.hub import Observation
from .._retry import Failure
from .._session import LazySession, NoAnswer, SessionSettings, Timeouts, describe, no_answer

__all__ = ["S3Response", "S3Session"]

# aiohttp pauses the socket once this much is buffered unread; a larger buffer keeps a
# fast link busy while the consumer hands a batch to the disk.
_READ_BUFFER = 1024 * 1024


class S3Response:
    """One answer from the storage; `read` raises NoAnswer when the body breaks off."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._left = memoryview(b"")

    async def read(self, limit: int) -> bytes:
        """Up to `limit` bytes (whatever has arrived, at least one); b"" at the end."""
        if not self._left:
            try:
                while True:
                    # As received, without the copy that joining buffered pieces costs.
                    data, end_of_http_chunk = await self._response.content.readchunk()
                    if data or not end_of_http_chunk:
                        break
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise NoAnswer(Failure.NO_ANSWER, describe(exc)) from exc
            if len(data) <= limit:
                return data
            self._left = memoryview(data)
        piece = bytes(self._left[:limit])
        self._left = self._left[limit:]
        return piece

    async def read_error_body(self, limit: int = 64 * 1024) -> bytes:
        """An error answer's body, at most `limit` bytes; b"" when it cannot be read."""
        parts: list[bytes] = []
        held = 0
        try:
            while held < limit:
                part = await self._response.content.read(limit - held)
                if not part:
                    break
                parts.append(part)
                held += len(part)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        return b"".join(parts)

    def close(self) -> None:
        """Let go of the connection: back to the pool when the body was read, else closed."""
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


def _download_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    # No total: a long download is never cut for taking long.
    return aiohttp.ClientTimeout(total=None, connect=timeouts.connect, sock_read=timeouts.read)


class S3Session:
    """A separate aiohttp session for download links, made lazily inside the running loop.

    It carries no API credentials and no default headers but the User-Agent (aiohttp
    cannot drop a session-wide header per request, and S3 answers 400 to a second auth
    mechanism); it keeps bodies as stored (no decompression); it has no total timeout,
    only connect and idle-read ones, so a long download is never cut for taking long.
    """

    def __init__(
        self, settings: SessionSettings, *, observation: Observation | None = None
    ) -> None:
        self._session = LazySession(
            settings,
            timeout=_download_timeout(settings.timeouts),
            auto_decompress=False,
            read_bufsize=_READ_BUFFER,
        )
        self._observation = observation
        self._timeout = _download_timeout(settings.timeouts)
        #: Given with each request; None for the session's own.
        self._per_request: aiohttp.ClientTimeout | None = None

    def with_timeouts(self, timeouts: Timeouts) -> S3Session:
        """The same pool, its requests limited by `timeouts` (connect and idle read)."""
        if timeouts == self._session.settings.timeouts:
            return self
        view = copy.copy(self)
        view._per_request = _download_timeout(timeouts)
        return view

    async def get(self, url: yarl.URL, headers: Mapping[str, str]) -> S3Response:
        """Send one GET for `url` exactly as given; the caller must close the answer."""
        session = self._session.get()
        observer = None if self._observation is None else self._observation.current
        call = None if observer is None else observer.call("GET", url, target="storage")
        try:
            if call is not None:
                call.attempt(1)
            proxies = self._session.environment_proxies
            proxy = None if proxies is None else proxies.for_url(url)
            if self._per_request is None and proxy is None:
                response = await session.get(url, headers=headers, allow_redirects=False)
            else:
                response = await session.get(
                    url,
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._per_request or self._timeout,
                    proxy=proxy,
                )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failure = no_answer(exc)
            if call is not None:
                call.failed(str(failure))
                call.end(failure)
            raise failure from exc
        except BaseException as exc:
            if call is not None:
                call.end(exc)
            raise
        if call is not None:
            call.answered(response.status, response.headers)
            call.end(None)
        return S3Response(response)

    async def aclose(self) -> None:
        await self._session.aclose()
