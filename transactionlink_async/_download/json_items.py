"""Incremental JSON: items under a prefix, parsed from bytes as they arrive (ijson)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..errors import InvalidResponseError, ResultDownloadError
from .gzip import Gunzip, GzipError, is_gzip
from .pace import Pacer

__all__ = ["json_items", "load_ijson"]

# Bytes handed to the parser at a time: the items they complete are held until yielded,
# so this bounds the memory in flight whatever the network's chunk size. Small, so that
# the items of one buffer are handed over before a young collection of the garbage
# collector finds them alive: with 64 KiB, enough of them outlived one to start full
# collections, each visiting every object of the process (tens of ms with aiohttp).
_BUFFER = 8 * 1024


def load_ijson() -> tuple[Any, Any]:
    """(ijson, its C backend when built or else its default one); ImportError naming the extra."""
    try:
        import ijson
    except ImportError:
        raise ImportError(
            "incremental JSON parsing needs ijson: pip install 'transactionlink-async[json]'"
        ) from None
    try:
        return ijson, ijson.get_backend("yajl2_c")
    except ImportError:
        return ijson, ijson


class _Reader:
    """The file-like `async read(n)` ijson pulls from, over a chunk source; gunzips if asked.

    Hands out at most `n` bytes per call, gzip included (a small body may inflate
    enormously), so the parser's buffer stays bounded.
    """

    def __init__(self, source: Callable[[], Awaitable[bytes]], *, gzip: bool) -> None:
        self._source = source
        self._gunzip = Gunzip() if gzip else None
        self._pending = memoryview(b"")
        self.consumed = 0
        # Each read is followed by parsing what it returns, and the items it completes are
        # handed out without suspending: reads are where the other tasks get their turn.
        self._pacer = Pacer()

    async def read(self, n: int) -> bytes:
        if n <= 0:
            return b""  # ijson probes the type of data with read(0)
        try:
            while True:
                out = self._take(n)
                if out:
                    self.consumed += len(out)
                    await self._pacer.pace()
                    return out
                chunk = await self._source()
                if not chunk:
                    if self._gunzip is not None:
                        self._gunzip.close()
                    return b""
                if self._gunzip is not None:
                    self._gunzip.feed(chunk)
                else:
                    self._pending = memoryview(chunk)
        except GzipError as exc:
            raise InvalidResponseError(f"the result says it is gzip, but {exc}") from None

    def _take(self, n: int) -> bytes:
        if self._gunzip is not None:
            return self._gunzip.read(n)
        out = bytes(self._pending[:n])
        self._pending = self._pending[len(out) :]
        return out


async def json_items(
    read: Callable[[], Awaitable[bytes]],
    prefix: str,
    *,
    use_float: bool,
    content_encoding: str | None,
) -> AsyncIterator[Any]:
    """Yield each JSON value under `prefix` (ijson syntax, e.g. "records.item") of a body.

    `read` returns the next bytes, b"" at the end. Numbers with a fraction come as
    `decimal.Decimal` (exact) unless `use_float`.
    """
    ijson, backend = load_ijson()
    gzip = is_gzip(content_encoding)
    if not gzip and (content_encoding or "identity").strip().lower() != "identity":
        raise ResultDownloadError(
            f"the result is stored with Content-Encoding {content_encoding!r}, which cannot be "
            "parsed here; use download_result() to keep its bytes as they are"
        )
    reader = _Reader(read, gzip=gzip)
    # Push parsing: this coroutine reads the bytes and hands them to the parser. ijson's
    # async interface would drive `read` from C, and its C backend throws exceptions (a
    # broken transfer, a cancellation) in past our frames: the resume logic and every
    # cleanup on the way would never run.
    found = ijson.sendable_list()
    pacer = Pacer()
    parser = backend.items_coro(found, prefix, use_float=use_float)
    while True:
        data = await reader.read(_BUFFER)
        try:
            if data:
                parser.send(data)
            else:
                parser.close()  # the end: a document cut short is refused here
        except ijson.JSONError as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidResponseError(
                f"the result is not valid JSON (near byte {reader.consumed}): {detail}"
            ) from None
        # At most what one buffer of input completed: memory stays bounded.
        items = list(found)
        del found[:]
        for item in items:
            yield item
        if not data:
            return
        # The parser and the consumer ran without suspending: let the others have a turn.
        await pacer.pace()
