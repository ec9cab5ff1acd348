"""json_items hands its items over before the garbage collector finds them alive.

An item still held when a young collection runs is moved to an older generation; enough
of those start a full collection, which visits every object of the process and, with
aiohttp loaded, holds the event loop for tens of milliseconds. A fresh interpreter
(whose collector thresholds the rest of the suite has not moved) streams a document of
many small records and counts the full collections that the stream itself started.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import asyncio, gc, json

import aiohttp  # the heap of a real client: a full collection then costs what it does there

from transactionlink_async._download.json_items import json_items

RECORD = {"n": 0, "id": "r0", "amount": 517067.49, "tags": ["kyc", "aml"], "seen": {"at": 1}}
DOC = b'{"records": [' + b",".join([json.dumps(RECORD).encode()] * 200_000) + b"]}"


async def main():
    view, position = memoryview(DOC), 0

    async def read():
        nonlocal position
        chunk = bytes(view[position : position + 256 * 1024])
        position += len(chunk)
        return chunk

    items = 0
    gc.collect()  # what earlier work left to collect is not the stream's
    full_before = gc.get_stats()[2]["collections"]
    async for _ in json_items(read, "records.item", use_float=False, content_encoding=None):
        items += 1
    full = gc.get_stats()[2]["collections"] - full_before
    print(json.dumps({"items": items, "full_collections": full}))


asyncio.run(main())
"""


def test_a_long_stream_starts_no_full_collection() -> None:
    ijson = pytest.importorskip("ijson")
    try:
        ijson.get_backend("yajl2_c")
    except ImportError:
        pytest.skip("ijson's C parser is not built here (the Python one allocates otherwise)")
    done = subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["items"] == 200_000
    # Items held across young collections would start one every few thousand records.
    assert figures["full_collections"] == 0
