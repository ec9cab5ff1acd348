"""The aiohttp session for pre-signed download links: no credentials, bytes exactly as stored."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import yarl

from .._retry import Failure
from .._session import LazySession, NoAnswer, SessionSettings, describe, no_answer

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


class S3Session:
    """A separate aiohttp session for download links, made lazily inside the running loop.

    It carries no API credentials and no default headers but the User-Agent (aiohttp
    cannot drop a session-wide header per request, and S3 answers 400 to a second auth
    mechanism); it keeps bodies as stored (no decompression); it has no total timeout,
    only connect and idle-read ones, so a long download is never cut for taking long.
    """

    def __init__(self, settings: SessionSettings) -> None:
        timeouts = settings.timeouts
        self._session = LazySession(
            settings,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=timeouts.connect, sock_read=timeouts.read
            ),
            auto_decompress=False,
            read_bufsize=_READ_BUFFER,
        )

    async def get(self, url: yarl.URL, headers: Mapping[str, str]) -> S3Response:
        """Send one GET for `url` exactly as given; the caller must close the answer."""
        session = self._session.get()
        try:
            response = await session.get(url, headers=headers, allow_redirects=False)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise no_answer(exc) from exc
        return S3Response(response)

    async def aclose(self) -> None:
        await self._session.aclose()
