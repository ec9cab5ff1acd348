"""Large JSON parsed in a worker thread that shares the GIL: the same values, a running loop."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._download.json_whole import loads_sharing_the_gil

pytestmark = pytest.mark.anyio

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=40,
)


@given(JSON)
def test_values_are_those_of_json_loads(value: Any) -> None:
    text = json.dumps(value)
    assert loads_sharing_the_gil(text) == json.loads(text)
    assert loads_sharing_the_gil(text.encode()) == json.loads(text.encode())


@pytest.mark.parametrize("text", ['{"a": 1', "[1,]", "", "\ufeff{}", '{"a": 1} x', "nan"])
def test_errors_are_those_of_json_loads(text: str) -> None:
    with pytest.raises(ValueError) as ours:  # noqa: PT011 - whichever json.loads raises
        loads_sharing_the_gil(text)
    with pytest.raises(ValueError) as theirs:  # noqa: PT011
        json.loads(text)
    assert type(ours.value) is type(theirs.value)


def test_json_extensions_are_kept() -> None:
    # What json.loads accepts beyond JSON (NaN, duplicate keys) comes out the same.
    parsed = loads_sharing_the_gil('{"a": NaN, "b": 1, "b": 2}')
    assert math.isnan(parsed["a"])
    assert parsed["b"] == 2


async def ticks_during(parse: Any, text: str | bytes) -> int:
    """How often the event loop got a turn while a worker thread ran `parse(text)`."""
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    start = ticks
    await anyio.to_thread.run_sync(parse, text)
    done = True
    await task
    return ticks - start


@pytest.fixture
def no_gc_callbacks() -> Iterator[None]:
    """Without them, as in production: a gc callback (hypothesis installs one) is Python
    code run at every collection, which hands the GIL over even inside json.loads."""
    saved = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        yield
    finally:
        gc.callbacks.extend(saved)


@pytest.mark.usefixtures("no_gc_callbacks")
async def test_the_loop_runs_while_a_thread_parses() -> None:
    text = json.dumps({"records": [{"n": n, "tags": ["a"]} for n in range(400_000)]})
    # json.loads holds the GIL from the first byte to the last (the loop gets its turns
    # only as the thread starts and ends); ours hands it over all along.
    held = await ticks_during(json.loads, text)
    shared = await ticks_during(loads_sharing_the_gil, text)
    assert shared > 4 * held, (shared, held)


async def longest_hold(parse: Any, data: bytes) -> float:
    """The longest the event loop went without a turn while a thread ran `parse(data)`,
    as a share of the whole parse."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    await anyio.to_thread.run_sync(len, b"")  # a worker thread is waiting already
    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await anyio.to_thread.run_sync(parse, data)
    whole = time.perf_counter() - started
    done = True
    await task
    return max(gaps) / whole


@pytest.mark.usefixtures("no_gc_callbacks")
async def test_the_loop_runs_while_a_thread_parses_bytes_without_objects() -> None:
    # No objects, so no hook to hand the GIL over at: json.loads holds it throughout.
    # Given as bytes, the document is read a window at a time (json_pieces), and the
    # GIL changes hands between windows.
    data = json.dumps(["x" * 100 for _ in range(400_000)]).encode()
    held = await longest_hold(json.loads, data)
    shared = await longest_hold(loads_sharing_the_gil, data)
    assert shared < 0.25, (shared, held)
    assert shared < held / 3, (shared, held)
