"""The API's HTTP transport: one attempt of one request, read whole within its time limits."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping

import aiohttp
import attrs
import yarl

from ._deadline import Attempt, Watchdog
from ._retry import Failure
from ._session import LazySession, NoAnswer, SessionSettings, Timeouts, no_answer, read_at_most
from ._threads import compute

__all__ = ["BodyTooLarge", "RawResponse", "Timing", "Transport", "join_pieces"]

#: How much of an error answer's body is kept (enough for any ErrorResponse).
ERROR_BODY_LIMIT = 64 * 1024
# Bodies larger than this are joined from their pieces in a worker thread: bytes.join
# gives the GIL up while it copies that much, and tens of megabytes of fresh memory take
# tens of milliseconds to copy into, which on the event loop would hold every task up.
_JOIN_OFF_LOOP = 1024 * 1024


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


class Timing:
    """The time limits of one `Timeouts`: what aiohttp enforces, and what the watchdog does."""

    def __init__(self, timeouts: Timeouts, *, watchdog: bool | None = None) -> None:
        self.timeouts = timeouts
        self.watchdog: Watchdog | None = None
        if timeouts.watched() if watchdog is None else watchdog:
            # aiohttp keeps only the connect limit; the watchdog holds total and read.
            read = timeouts.read
            self.watchdog = Watchdog(
                total=timeouts.total,
                idle=read,
                # aiohttp starts the read limit once the request is written; the watchdog
                # cannot see that moment, so it allows the connect limit on top.
                first_idle=None if read is None else read + (timeouts.connect or 0.0),
            )
            self.client_timeout = aiohttp.ClientTimeout(
                total=None, connect=timeouts.connect, sock_read=None
            )
        else:
            self.client_timeout = timeouts.client_timeout()
        #: Given with each request; None for the session's own (its default timing).
        self.per_request: aiohttp.ClientTimeout | None = None

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()


class Transport:
    """Owns the API's aiohttp session; made lazily inside the running loop."""

    def __init__(self, settings: SessionSettings, *, watchdog: bool | None = None) -> None:
        self._watchdog_choice = watchdog
        self.default_timing = self._default = Timing(settings.timeouts, watchdog=watchdog)
        # Views of the client with other timeouts share the pool, each with its own timing.
        self._timings: weakref.WeakValueDictionary[Timeouts, Timing] = weakref.WeakValueDictionary()
        self._session = LazySession(settings, timeout=self._default.client_timeout)

    @property
    def settings(self) -> SessionSettings:
        return self._session.settings

    def timing(self, timeouts: Timeouts) -> Timing | None:
        """The timing of requests sent with `timeouts`; None for the transport's own."""
        if timeouts == self._default.timeouts:
            return None
        timing = self._timings.get(timeouts)
        if timing is None:
            timing = Timing(timeouts, watchdog=self._watchdog_choice)
            timing.per_request = timing.client_timeout
            self._timings[timeouts] = timing
        return timing

    async def request(
        self,
        method: str,
        url: yarl.URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        max_body: int | None = None,
        timing: Timing | None = None,
    ) -> RawResponse:
        """Send once; raise NoAnswer when no complete answer came, BodyTooLarge past max_body."""
        session = self._session.get()
        if timing is None:
            timing = self._default
        watchdog = timing.watchdog
        attempt = None if watchdog is None else watchdog.start()
        try:
            proxies = self._session.environment_proxies
            proxy = None if proxies is None else proxies.for_url(url)
            if timing.per_request is None and proxy is None:
                sending = session.request(
                    method, url, headers=headers, data=body, allow_redirects=False
                )
            else:
                sending = session.request(
                    method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=timing.per_request or timing.client_timeout,
                    proxy=proxy,
                )
            async with sending as response:
                if watchdog is not None:
                    watchdog.progress(attempt)
                if response.status >= 400:
                    # An error answer is never "the result": read enough to explain it.
                    pieces = [await read_at_most(response.content, ERROR_BODY_LIMIT)]
                elif watchdog is None:
                    pieces = await _read_body(response, max_body)
                else:
                    pieces = await _read_watched(response, max_body, watchdog, attempt)
                status, answer_headers = response.status, response.headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise no_answer(exc) from exc
        except asyncio.CancelledError:
            if watchdog is not None and watchdog.timed_out(attempt):
                raise NoAnswer(Failure.NO_ANSWER, "timed out") from None
            raise
        finally:
            if watchdog is not None:
                watchdog.finish(attempt)
        # Joined once the attempt is over: the copy (and any wait for a worker thread) is
        # no part of the answer's time limits, and the connection is back in the pool.
        return RawResponse(status, answer_headers, await _joined(pieces))

    async def aclose(self) -> None:
        self._default.close()
        for timing in list(self._timings.values()):
            timing.close()
        await self._session.aclose()


async def _read_body(response: aiohttp.ClientResponse, max_body: int | None) -> list[bytes]:
    if max_body is None:
        return [await response.read()]
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
    return chunks


async def _read_watched(
    response: aiohttp.ClientResponse,
    max_body: int | None,
    watchdog: Watchdog,
    attempt: Attempt | None,
) -> list[bytes]:
    """The body's pieces, read as they arrive, telling the watchdog of each one."""
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
    return chunks


async def _joined(chunks: list[bytes]) -> bytes:
    """The pieces of a body as one bytes object, joined off the loop when it is large."""
    if len(chunks) == 1:
        return chunks[0]
    if sum(map(len, chunks)) <= _JOIN_OFF_LOOP:
        return b"".join(chunks)
    # Pure copying with nothing to clean up: a cancelled caller need not wait for it.
    return await compute(join_pieces, chunks)


def join_pieces(chunks: list[bytes]) -> bytes:
    """The pieces as one bytes object, the list emptied: meant for a worker thread."""
    joined = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    # The pieces go now, not when the worker thread takes its next job.
    chunks.clear()
    return joined
