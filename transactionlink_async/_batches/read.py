"""Reading a batch's input a chunk at a time, sync or async, without waiting to fill a chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Iterable

__all__ = ["read_in_chunks"]

_END = object()


async def read_in_chunks(
    source: Iterable[object] | AsyncIterable[object], size: int
) -> AsyncGenerator[list[object], None]:
    """`source`'s items in lists of at most `size`, in order.

    A plain iterable is read `size` items at a time. An async one is read ahead by a
    task into a bounded queue, and a chunk is whatever is there (at least one item): a
    slow source never holds back the items it already gave. An error of the source is
    raised after the items it gave before it.
    """
    if not isinstance(source, AsyncIterable):
        iterator = iter(source)
        while True:
            chunk: list[object] = []
            error: Exception | None = None
            try:
                for item in iterator:
                    chunk.append(item)
                    if len(chunk) == size:
                        break
            except Exception as exc:
                error = exc
            if chunk:
                yield chunk
            if error is not None:
                raise error
            if len(chunk) < size:
                return

    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=size)
    failure: list[BaseException] = []

    async def read() -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as exc:
            failure.append(exc)
        # Not on a cancel: then nobody reads the queue any more.
        await queue.put(_END)

    reader = asyncio.ensure_future(read())
    try:
        ended = False
        while not ended:
            chunk = [await queue.get()]
            while len(chunk) < size and not queue.empty():
                chunk.append(queue.get_nowait())
            if chunk[-1] is _END:
                chunk.pop()
                ended = True
            if chunk:
                yield chunk
        if failure:
            raise failure[0]
    finally:
        reader.cancel()
        await asyncio.wait({reader})
