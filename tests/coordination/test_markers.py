"""Notes of announced ends: kept for their time to live, and never more than the limit."""

from __future__ import annotations

from transactionlink_async.coordination._markers import Markers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_note_is_seen_until_it_expires() -> None:
    clock = Clock()
    markers = Markers(ttl=10, clock=clock)
    markers.note("e1")
    clock.now = 9.9
    assert markers.seen("e1")
    assert not markers.seen("e2")
    clock.now = 10.0
    assert not markers.seen("e1")


def test_old_notes_leave_and_the_count_stays_bounded() -> None:
    clock = Clock()
    markers = Markers(ttl=10, limit=100, clock=clock)
    for index in range(1000):
        markers.note(f"e{index}")
    assert len(markers) == 100
    assert markers.seen("e999")
    assert not markers.seen("e0")
    clock.now = 20
    markers.note("late")
    assert len(markers) == 1
