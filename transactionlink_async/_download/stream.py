"""ResultStream: a result's bytes chunk by chunk (or JSON items), resumed and verified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..errors import ResultDownloadError
from .decide import md5_verdict, wants_md5
from .json_items import json_items
from .remote import RemoteBody, Restarted
from .sinks import Md5

__all__ = ["ResultStream"]


class ResultStream:
    """A result's bytes, chunk by chunk, in memory that does not grow with the result's size.

    Use `async for chunk in stream` or `stream.json_items(prefix)`, once, inside the
    `async with tl.workflows.stream_result(...)` block. A broken transfer is resumed
    where it stopped; the size (and the MD5 when the ETag is one) is checked at the end,
    raising ResultDownloadError when the bytes were wrong.
    """

    def __init__(
        self,
        *,
        inline: bytes | None = None,
        body: RemoteBody | None = None,
        chunk_size: int,
        verify_md5: bool = True,
    ) -> None:
        self._inline = memoryview(inline) if inline is not None else None
        self._body = body
        self._chunk_size = chunk_size
        self._md5 = Md5(lambda: wants_md5(verify_md5, body.etag)) if body is not None else None
        self._claimed = False
        self._closed = False
        self._position = 0
        #: Bytes handed out so far.
        self.bytes_read: int = 0

    def __repr__(self) -> str:
        source = f"redirected to {self._body.where}" if self._body is not None else "inline"
        return f"<ResultStream {source}, {self.bytes_read} of {self.content_length} bytes read>"

    @property
    def redirected(self) -> bool:
        """Whether the result came through a pre-signed link rather than inline."""
        return self._body is not None

    @property
    def content_length(self) -> int | None:
        """The body's size in bytes as stored, when known."""
        if self._inline is not None:
            return len(self._inline)
        return self._body.total if self._body is not None else None

    @property
    def etag(self) -> str | None:
        return self._body.etag if self._body is not None else None

    @property
    def content_encoding(self) -> str | None:
        """The stored object's Content-Encoding: chunks come as stored (e.g. still gzip)."""
        return self._body.content_encoding if self._body is not None else None

    def _claim(self) -> None:
        if self._claimed:
            raise RuntimeError("a ResultStream can be read once; open a new one to read again")
        self._claimed = True

    def __aiter__(self) -> ResultStream:
        self._claim()
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def _next(self) -> bytes:
        if self._closed:
            raise RuntimeError("the ResultStream is closed; read it inside its `async with` block")
        if self._inline is not None:
            chunk = bytes(self._inline[self._position : self._position + self._chunk_size])
            self._position += len(chunk)
        else:
            assert self._body is not None
            assert self._md5 is not None
            read = await self._body.read()
            if isinstance(read, Restarted):  # only before any byte was handed on
                raise ResultDownloadError(read.reason)
            chunk = read
            if chunk:
                digest = self._md5.target()
                if digest is not None:
                    digest.update(chunk)
            else:
                _, mismatch = md5_verdict(self._md5.hexdigest(), self._body.etag)
                if mismatch is not None:
                    raise ResultDownloadError(
                        f"the result read from {self._body.where} is corrupt: its {mismatch}; "
                        "read it again"
                    )
        self.bytes_read += len(chunk)
        return chunk

    def json_items(self, prefix: str, *, use_float: bool = False) -> AsyncIterator[Any]:
        """Each JSON value under `prefix` (ijson syntax, e.g. "records.item"), as it arrives.

        Numbers with a fraction come as `decimal.Decimal`, exactly as written, unless
        `use_float=True`. A gzip-encoded result is decoded on the way. Needs the `json`
        extra (ijson); its C backend is used when built.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        self._claim()
        return json_items(
            self._next, prefix, use_float=use_float, content_encoding=self.content_encoding
        )

    def close(self) -> None:
        """Release the connection (also when the body was not read to its end)."""
        self._closed = True
        if self._body is not None:
            self._body.close()
