"""Reading an API's token-bucket rate from the sends that emptied it."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from transactionlink_async._ratelimit.estimate import MIN_SENDS, limit_from_drain

SLOT = 0.1


def drain(rate: float, burst: float, start: float, end: float, seconds: float) -> list[int]:
    """Sends per slot of a pace climbing from `start` to `end` a second, spread evenly,
    until a bucket of `rate` and `burst` (full at first) has no token for the next one."""
    step = SLOT / 20
    tokens, carried, sends = burst, 0.0, [0]
    steps = int(seconds / step)
    for i in range(steps):
        if i and i % 20 == 0:
            sends.append(0)
        tokens = min(burst, tokens + rate * step)
        carried += (start + (end - start) * i / steps) * step
        while carried >= 1.0:
            if tokens < 1.0:
                return sends
            carried -= 1.0
            tokens -= 1.0
            sends[-1] += 1
    return sends


@given(
    rate=st.floats(50, 500),  # five sends a slot and more: see the next test
    burst_share=st.floats(0.02, 1.0),
    start=st.floats(0.8, 0.99),
    end=st.floats(1.05, 1.5),
)
def test_the_rate_that_empties_the_bucket_is_found(
    rate: float, burst_share: float, start: float, end: float
) -> None:
    burst = max(2.0, rate * burst_share)
    sends = drain(rate, burst, start * rate, end * rate, seconds=60)
    assume(sum(sends) >= MIN_SENDS)
    found = limit_from_drain(
        sends,
        slot=SLOT,
        # The first 429 came after the burst and 10 ms of the rate got through.
        first_accepted=round(burst + rate * 0.01),
        first_elapsed=0.01,
        pause=1.0,
    )
    assert found is not None
    # To within 8 %, or a send per slot (whole sends per slot hide a small burst).
    assert found == pytest.approx(rate, rel=0.08, abs=1 / SLOT)


def test_a_slow_rate_is_read_to_within_a_send_per_slot() -> None:
    sends = drain(20, 10, 18, 30, seconds=60)
    found = limit_from_drain(sends, slot=SLOT, first_accepted=10, first_elapsed=0.01, pause=1.0)
    assert found == pytest.approx(20, abs=1 / SLOT)


def test_too_few_sends_say_nothing() -> None:
    assert (
        limit_from_drain(
            [1] * (MIN_SENDS - 1), slot=SLOT, first_accepted=5, first_elapsed=0.0, pause=1.0
        )
        is None
    )


def test_a_long_pause_refills_only_up_to_the_burst() -> None:
    sends = drain(100, 20, 90, 130, seconds=30)
    for pause in (1.0, 5.0, 60.0):
        found = limit_from_drain(
            sends, slot=SLOT, first_accepted=21, first_elapsed=0.01, pause=pause
        )
        assert found == pytest.approx(100, rel=0.05)


@given(pace=st.floats(1.1, 1.6))
def test_the_slot_of_the_refused_send_counts_only_what_came_before_it(pace: float) -> None:
    # A steady pace above 200 a second empties a burst of 20: the refusal falls inside a
    # slot, and only that slot's sends before it drained the bucket.
    rate, burst = 200.0, 20.0
    per_slot = pace * rate * SLOT
    drained_after = burst / ((pace - 1.0) * rate * SLOT)  # slots until empty
    whole = int(drained_after)
    share = drained_after - whole
    assume(0.05 < share < 0.9)
    sends = [per_slot] * whole + [per_slot * share]
    found = limit_from_drain(
        sends, slot=SLOT, first_accepted=21, first_elapsed=0.005, pause=1.0, last_share=share
    )
    assert found is not None
    assert found == pytest.approx(rate, rel=0.02)
    # Read as a whole slot, the sends that came after the refusal would inflate it.
    inflated = limit_from_drain(
        [*sends[:-1], per_slot], slot=SLOT, first_accepted=21, first_elapsed=0.005, pause=1.0
    )
    assert inflated is not None
    assert inflated > found
