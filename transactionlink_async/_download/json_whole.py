"""Whole JSON documents of many megabytes, parsed in a thread that lets the event loop run."""

from __future__ import annotations

import json
from typing import Any

from .collector import HOLD_FROM, collector_held
from .json_pieces import loads_in_pieces, unchanged

__all__ = ["loads_sharing_the_gil"]


def loads_sharing_the_gil(text: str | bytes) -> Any:
    """`json.loads(text)`, meant for a worker thread: the same values, the same errors.

    json's C parser holds the GIL from the first byte to the last, so a thread parsing
    50 MB stops the event loop for half a second as surely as parsing on the loop would.
    An `object_hook` that returns each object unchanged is a little Python call per
    object: at each one the interpreter may hand the GIL over (every 5 ms by default,
    `sys.setswitchinterval`), so the loop runs while the document is parsed. A document
    with no objects (one huge array of numbers or strings) still parses in one stretch.

    A document of `HOLD_FROM` bytes or more is parsed with the cycle collector held off
    (see `collector_held`): its collections, not the parse, were the longest stalls.
    Given as bytes, it is also decoded and parsed a piece at a time (`loads_in_pieces`):
    decoding it into one str would hold the GIL for tens of milliseconds.
    """
    if len(text) < HOLD_FROM:
        return json.loads(text, object_hook=unchanged)
    with collector_held():
        if isinstance(text, str):
            return json.loads(text, object_hook=unchanged)
        return loads_in_pieces(text)
