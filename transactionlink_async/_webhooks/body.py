"""Reading a delivery's request body without holding more than the receiver allows."""

from __future__ import annotations

from collections.abc import AsyncIterable

__all__ = ["read_capped"]


async def read_capped(
    chunks: AsyncIterable[bytes], declared: int | str | None, limit: int
) -> bytes | None:
    """A request body from its chunks, or None as soon as it proves longer than `limit`.

    `declared` is its Content-Length, if any: a body declared too long is not read at all.
    """
    if isinstance(declared, str):
        declared = int(declared) if declared.strip().isdigit() else None
    if declared is not None and declared > limit:
        return None
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
