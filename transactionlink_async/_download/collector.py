"""The cycle collector held off while a large JSON document is built, for the loop's sake."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator

__all__ = ["HOLD_FROM", "MAX_HOLD", "collector_held", "holds_collector"]

#: Documents of at least this many bytes are parsed with the collector held off. Below
#: it the objects made are too few for a full collection of them to stall the loop.
HOLD_FROM = 4 * 1024 * 1024
#: Seconds after which a hold takes in no more parses (see `_Hold.enter`).
MAX_HOLD = 5.0


def holds_collector() -> bool:
    """Whether this interpreter's collector is the one `collector_held` knows how to hold.

    From 3.14 the collector is incremental, its pauses already short; a free-threaded
    build's `gc.freeze` walks the whole heap. There it is left alone.
    """
    return sys.version_info < (3, 14) and not sysconfig.get_config_var("Py_GIL_DISABLED")


class _Hold:
    """One hold for the process, however many threads parse at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False
        self._since = 0.0
        # Full collections counted when the last hold ended (None: no hold yet).
        self._full_at_end: int | None = None

    def after_fork(self) -> None:
        """In a child forked mid-hold: no holder came along, so nothing is held."""
        self._lock = threading.Lock()
        if self._holders and self._resume:
            gc.enable()
        self._holders = 0
        self._resume = False

    def enter(self) -> bool:
        """Join the hold (True), or not when it has lasted `MAX_HOLD` seconds already."""
        with self._lock:
            if self._holders == 0:
                # An application that froze objects (before forking workers, say) keeps
                # them frozen: the hand-over below would thaw them, so nothing is held.
                # Nor is anything held again before a full collection has run since the
                # last hold: the cyclic garbage the hand-over moved to the oldest
                # generation is freed by one, and holds one after another would keep
                # the collector from ever reaching one (each hand-over starts its counts
                # again), while that garbage piled up.
                self._resume = (
                    holds_collector()
                    and gc.isenabled()
                    and gc.get_freeze_count() == 0
                    and self._full_at_end != gc.get_stats()[2]["collections"]
                )
                if self._resume:
                    gc.disable()
                self._since = time.monotonic()
            elif time.monotonic() - self._since > MAX_HOLD:
                # Parses overlapping without end would keep the collector off for good,
                # and the application's own cyclic garbage with it: this one goes
                # without, so the hold ends when those already in it are done.
                return False
            self._holders += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders or not self._resume:
                return
            if gc.get_freeze_count() == 0:
                # Freezing then thawing moves every tracked object of the process (the
                # document's and whatever else is young) to the oldest generation in
                # two list splices, without walking any and without counting them
                # toward the next full collection. Left young, the document's objects
                # would be walked by the next young collection and soon after by a
                # full one: a stall as long as the parse's own.
                gc.freeze()
                gc.unfreeze()
            gc.enable()
            self._full_at_end = gc.get_stats()[2]["collections"]


_HOLD = _Hold()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_HOLD.after_fork)


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """No cycle collection in the process while the block runs, none owed after it.

    The hold is the whole process's: no thread's cycles are collected meanwhile, and
    the hand-over at its end moves every young object to the oldest generation, to be
    collected by the next full collection; until one has run, no new hold begins (so
    under back-to-back parses, every other one runs with the collector on). Blocks of
    several threads share one hold; one that starts when the hold has lasted `MAX_HOLD`
    seconds runs with the collector as it is, so overlapping parses cannot keep it off
    for good. An application that turns the collector off during a hold finds it on
    again after.

    A document of 50 MB parses into about 900,000 containers. With the collector on,
    every few thousand of them start a collection, and each full one walks all that the
    process holds, the half-built document too: eight full collections of up to 300 ms,
    each with the GIL, in a worker thread or not. A JSON tree has no cycles to find; its
    objects are freed by reference counting when dropped. A full collection that runs
    later, while the application still holds the document, walks it as it walks
    anything the application holds.
    """
    if not _HOLD.enter():
        yield
        return
    try:
        yield
    finally:
        _HOLD.leave()
