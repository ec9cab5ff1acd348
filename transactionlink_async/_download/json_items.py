"""Incremental JSON: items under a prefix, parsed from bytes as they arrive (ijson)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..errors import InvalidResponseError, ResultDownloadError
from .gzip import Gunzip, GzipError, is_gzip
from .pace import Pacer

__all__ = ["json_items", "load_ijson"]

# Bytes the parser asks for at a time: the items they complete are held until yielded,
# so this bounds the memory in flight whatever the network's chunk size.
_BUFFER = 64 * 1024


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
    # items_async drives the C parser over reader.read(); its own buffer is _BUFFER bytes.
    items = backend.items_async(reader, prefix, buf_size=_BUFFER, use_float=use_float)
    # Items come from the parser's buffer without suspending, and the consumer's loop
    # body may not suspend either: every few dozen items, the other tasks get a turn.
    pacer = Pacer()
    count = 0
    try:
        while True:
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                return
            except ijson.JSONError as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InvalidResponseError(
                    f"the result is not valid JSON (near byte {reader.consumed}): {detail}"
                ) from None
            yield item
            count += 1
            if not count & 31:
                await pacer.pace()
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
