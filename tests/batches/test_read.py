"""Reading a batch's input in chunks: order kept, slow sources not waited on, errors last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._batches.read import read_in_chunks

pytestmark = pytest.mark.anyio


async def chunks_of(source: object, size: int) -> list[list[object]]:
    with anyio.fail_after(5):
        return [chunk async for chunk in read_in_chunks(source, size)]  # type: ignore[arg-type]


@given(count=st.integers(min_value=0, max_value=50), size=st.integers(min_value=1, max_value=9))
def test_a_plain_iterable_comes_in_full_chunks_in_order(count: int, size: int) -> None:
    chunks = asyncio.run(chunks_of(range(count), size))
    assert [item for chunk in chunks for item in chunk] == list(range(count))
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert all(0 < len(chunk) <= size for chunk in chunks)


async def test_a_slow_async_source_is_not_waited_on_to_fill_a_chunk() -> None:
    gate = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        yield 1
        yield 2
        await gate.wait()
        yield 3

    reader = read_in_chunks(source(), 100)
    with anyio.fail_after(5):
        first = await anext(reader)
    assert first in ([1], [1, 2])
    gate.set()
    rest = [item async for chunk in reader for item in chunk]
    assert first + rest == [1, 2, 3]


async def test_an_error_comes_after_the_items_before_it() -> None:
    def plain() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("broke")

    async def asynchronous() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise RuntimeError("broke")

    for source in (plain(), asynchronous()):
        got: list[object] = []

        async def read(source: object = source, got: list[object] = got) -> None:
            async for chunk in read_in_chunks(source, 10):  # type: ignore[arg-type]
                got.extend(chunk)

        with pytest.raises(RuntimeError, match="broke"):
            await read()
        assert got == [1, 2]


async def test_leaving_early_stops_the_reader() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            stopped.set()

    reader = read_in_chunks(endless(), 4)
    await anext(reader)
    await reader.aclose()
    with anyio.fail_after(5):
        await stopped.wait()
