"""Large documents are parsed with the cycle collector held off, and nothing is owed after.

A full collection walks every object of the process, the half-built document too; while
a large one is parsed, the collector would run several of them, each a stall of the
event loop as long as the walk. These tests count collections rather than time them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from transactionlink_async._download import collector
from transactionlink_async._download.collector import HOLD_FROM, collector_held, holds_collector
from transactionlink_async._download.json_whole import loads_sharing_the_gil

pytestmark = pytest.mark.skipif(
    not holds_collector(), reason="this interpreter's collector is left alone"
)

SCRIPT = r"""
import gc, json, sys

import aiohttp  # the heap of a real client

from transactionlink_async._download.json_pieces import unchanged
from transactionlink_async._download.json_whole import loads_sharing_the_gil
from transactionlink_async.testing._s3data import GeneratedJson

document = GeneratedJson(24_000_000)
text = b"".join(document.read(0, document.size))
parse = loads_sharing_the_gil if sys.argv[1] == "held" else (
    lambda text: json.loads(text, object_hook=unchanged)
)
gc.collect()
tracked_before = len(gc.get_objects())
full_before = gc.get_stats()[2]["collections"]
young_before = gc.get_stats()[0]["collections"]
result = parse(text)
figures = {
    "items": len(result["records"]),
    "full": gc.get_stats()[2]["collections"] - full_before,
    "young": gc.get_stats()[0]["collections"] - young_before,
    "enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
    "records_are_old": any(o is result["records"] for o in gc.get_objects(generation=2)),
}
del result
figures["tracked_growth"] = len(gc.get_objects()) - tracked_before
print(json.dumps(figures))
"""


def parsed_in_a_fresh_interpreter(how: str) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, "-c", SCRIPT, how], capture_output=True, text=True, timeout=120, check=True
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def test_a_plain_parse_of_the_same_document_runs_full_collections() -> None:
    # What the hold is for: without it, this document costs several full collections.
    figures = parsed_in_a_fresh_interpreter("plain")
    assert figures["full"] >= 1
    assert figures["young"] > 100


def test_a_large_document_is_parsed_without_any_collection() -> None:
    figures = parsed_in_a_fresh_interpreter("held")
    assert figures["items"] > 150_000
    assert (figures["full"], figures["young"]) == (0, 0)
    assert figures["enabled"]
    assert figures["frozen"] == 0
    # Handed to the oldest generation, so no young collection walks the document later;
    # and freed by reference counting once dropped, as any JSON tree is.
    assert figures["records_are_old"]
    assert figures["tracked_growth"] < 1000


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    gc.collect()  # a full collection since the last hold: the next one may hold
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


def collections_while(parse: Any, text: str) -> int:
    seen = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal seen
        seen += phase == "start"

    gc.callbacks.append(count)
    try:
        parse(text)
    finally:
        gc.callbacks.remove(count)
    return seen


def lists_of_size(size: int) -> str:
    """A JSON array of empty arrays (each a tracked container) exactly `size` bytes long."""
    count = (size - 2) // 3
    text = "[" + ",".join(["[]"] * count) + "]"
    return text + " " * (size - len(text))


@pytest.mark.usefixtures("collector_on")
def test_only_documents_from_the_threshold_on_hold_the_collector() -> None:
    below, at = lists_of_size(HOLD_FROM - 1), lists_of_size(HOLD_FROM)
    assert (len(below), len(at)) == (HOLD_FROM - 1, HOLD_FROM)
    assert collections_while(loads_sharing_the_gil, below) > 0
    assert collections_while(loads_sharing_the_gil, at) == 0
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_back_on_after_an_error() -> None:
    held = []

    def fail_while_held() -> None:
        with collector_held():
            held.append(not gc.isenabled())
            raise ValueError("mid-parse")

    with pytest.raises(ValueError, match="mid-parse"):
        fail_while_held()
    assert held == [True]
    assert gc.isenabled()
    with pytest.raises(json.JSONDecodeError):
        loads_sharing_the_gil(lists_of_size(HOLD_FROM)[:-2] + "x")
    assert gc.isenabled()


def overlapping_holds(pause: float) -> list[bool]:
    """A first hold, then a second one `pause` seconds later that outlasts it: whether the
    collector was on in the second once the first had left, and after the second."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_held():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        time.sleep(pause)
        with collector_held():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())
        seen.append(gc.isenabled())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return seen


@pytest.mark.usefixtures("collector_on")
def test_overlapping_holds_end_with_the_last_one() -> None:
    # The first has left; the second still holds, until it leaves too.
    assert overlapping_holds(0.0) == [False, True]


@pytest.mark.usefixtures("collector_on")
def test_a_hold_takes_in_no_more_blocks_once_it_is_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "MAX_HOLD", 0.05)
    # The second came after MAX_HOLD and did not join: the first one's leaving ended it.
    assert overlapping_holds(0.1) == [True, True]


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("collector_on")
def test_no_new_hold_before_a_full_collection_freed_what_the_last_one_handed_over() -> None:
    with collector_held():
        garbage = Cycle()
        gone = weakref.ref(garbage)
        del garbage  # a cycle: only the collector frees it, and it is held off
    # Handed over to the oldest generation: holds one after another would keep the
    # collector from the full collection that frees it, so the next block holds nothing.
    with collector_held():
        assert gc.isenabled()
    assert gone() is not None
    gc.collect()  # what the collector, left on, comes to
    assert gone() is None
    with collector_held():
        assert not gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
@pytest.mark.usefixtures("collector_on")
def test_a_child_forked_during_a_hold_starts_with_the_collector_on() -> None:
    with collector_held():
        assert not gc.isenabled()
        child = os.fork()
        if child == 0:  # the child: its hold has no holder to end it
            held_after = True
            with contextlib.suppress(BaseException):
                with collector_held():
                    pass
                held_after = not gc.isenabled()
            os._exit(0 if gc.isenabled() and not held_after else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_collector_turned_off_by_the_application_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with collector_held():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.usefixtures("collector_on")
def test_objects_the_application_froze_stay_frozen() -> None:
    assert gc.get_freeze_count() == 0
    gc.freeze()  # what a server does before forking its workers
    frozen = gc.get_freeze_count()
    try:
        with collector_held():
            # Handing objects over would thaw the application's: nothing is held.
            assert gc.isenabled()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
