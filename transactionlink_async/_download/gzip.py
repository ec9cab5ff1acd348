"""Gzip bodies inflated piece by piece: every member, each checked to its end."""

from __future__ import annotations

import zlib

__all__ = ["Gunzip", "GzipError", "is_gzip"]

_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream


class GzipError(ValueError):
    """The bytes are not a whole gzip body."""


def is_gzip(content_encoding: str | None) -> bool:
    return (content_encoding or "").strip().lower() in ("gzip", "x-gzip")


class Gunzip:
    """Inflates a gzip body fed in pieces, with bounded output per call.

    A body may hold several members one after another (RFC 1952; `gzip.decompress` reads
    them all too); zero bytes between or after them are padding. `close` raises GzipError unless
    the body ended exactly at the end of a member: a cut-off body is an error, not a
    shorter result (its trailer, with the CRC and the length, never arrived).
    """

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(_WBITS)
        self._input = b""
        # A read that filled its limit may have left output inside zlib: ask once more.
        self._drain = False

    @property
    def needs_input(self) -> bool:
        return not self._input and not self._drain

    def feed(self, data: bytes) -> None:
        """Add the next bytes of the body; call only when `needs_input`."""
        if not self.needs_input:
            raise RuntimeError("feed() before the previous bytes were read")
        self._input = bytes(data)

    def read(self, limit: int) -> bytes:
        """Up to `limit` (>= 1) inflated bytes; b"" when the bytes fed are used up."""
        try:
            while self._input or self._drain:
                if self._inflate.eof:
                    self._input = self._input.lstrip(b"\0")  # padding between members
                    if not self._input:
                        break
                    self._inflate = zlib.decompressobj(_WBITS)  # the next member
                out = self._inflate.decompress(self._input, limit)
                if self._inflate.eof:
                    self._input, self._drain = self._inflate.unused_data, False
                else:
                    self._input = self._inflate.unconsumed_tail
                    self._drain = len(out) == limit
                if out:
                    return out
        except zlib.error as exc:
            raise GzipError(f"it is not valid gzip ({exc})") from None
        return b""

    def close(self) -> None:
        """Check that the body ended where a member ends."""
        if not self._inflate.eof:
            raise GzipError("its gzip stream is cut short (the end of the stream is missing)")
