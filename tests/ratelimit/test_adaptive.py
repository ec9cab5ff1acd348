"""The adaptive launch rate (slow start, then CUBIC), on a virtual clock."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._ratelimit.adaptive import (
    BETA,
    CRUISE,
    DOUBLING,
    MIN_RATE,
    PLATEAU,
    PROBE_DOUBLING,
    AdaptiveRate,
)
from transactionlink_async._ratelimit.cubic import cubic_curve, cubic_rate


def test_the_cubic_curve_climbs_back_flattens_then_probes() -> None:
    curve = cubic_curve(start=90.0, ceiling=100.0, since=10.0, scale=1e-4)
    assert cubic_rate(curve, 5.0) == 90.0  # still paused
    assert cubic_rate(curve, 10.0) == pytest.approx(90.0)
    assert cubic_rate(curve, 10.0 + curve.k) == pytest.approx(100.0)
    early = cubic_rate(curve, 11.0) - cubic_rate(curve, 10.0)
    plateau = cubic_rate(curve, 10.0 + curve.k + 0.5) - cubic_rate(curve, 10.0 + curve.k - 0.5)
    assert early > 10 * plateau  # fast while far below, slow around the ceiling
    assert cubic_rate(curve, 10.0 + 3 * curve.k) > 100.0
    assert cubic_rate(curve, 1e12) == 1e6  # bounded


@given(
    start=st.floats(0.5, 1e4),
    ratio=st.floats(1.0, 100.0),
    times=st.lists(st.floats(-10, 1e3), min_size=2, max_size=20),
)
def test_the_curve_never_falls(start: float, ratio: float, times: list[float]) -> None:
    curve = cubic_curve(start=start, ceiling=start * ratio, since=0.0, scale=5e-5)
    rates = [cubic_rate(curve, t) for t in sorted(times)]
    assert all(b >= a * (1 - 1e-9) for a, b in itertools.pairwise(rates))
    assert all(r >= start * (1 - 1e-9) for r in rates)


def test_unlimited_until_the_first_429() -> None:
    pace = AdaptiveRate(now=0.0)
    assert not pace.limited
    assert pace.rate(0.0) is None
    assert [pace.reserve(0.0) for _ in range(1000)] == [0.0] * 1000


def test_the_first_429_starts_the_search_from_what_was_accepted() -> None:
    pace = AdaptiveRate(now=0.0)
    for i in range(30):
        pace.accepted(0.5 + i * 0.01)
    pace.throttled(now=0.9, sent_at=0.8, resume_at=1.9)
    assert pace.limited
    first = pace.rate(1.9)
    assert first is not None
    assert first == pytest.approx(30 / 0.9, rel=0.1)  # accepted a second until then
    assert pace.rate(1.9 + DOUBLING) == pytest.approx(2 * first)
    assert pace.rate(1.9 + 3 * DOUBLING) == pytest.approx(8 * first)
    # Turns are spaced at the rate from the end of the pause.
    waits = [pace.reserve(1.9) for _ in range(3)]
    assert waits[1] - waits[0] == pytest.approx(1 / first, rel=0.05)


def test_429s_in_flight_together_count_once() -> None:
    pace = AdaptiveRate(now=0.0)
    pace.throttled(now=1.0, sent_at=0.9, resume_at=2.0)
    after_first = pace.rate(2.0)
    assert after_first is not None
    for sent_at in (0.95, 0.99, 0.999):  # sent before the first 429 was heard of
        pace.throttled(now=1.01, sent_at=sent_at, resume_at=2.0)
    assert pace.rate(2.0) == after_first
    assert pace.rate(5.0) == pytest.approx(after_first * 2 ** (3 / DOUBLING))


def test_after_the_search_the_rate_restarts_below_the_refused_rate() -> None:
    pace = AdaptiveRate(now=0.0)
    pace.throttled(now=0.1, sent_at=0.05, resume_at=1.1)
    now = 1.1
    while (pace.rate(now) or 0) < 80:
        pace.accepted(now)
        now += 1 / (pace.rate(now) or 1)
    refused_at = pace.rate(now)
    assert refused_at is not None
    pace.throttled(now=now + 0.01, sent_at=now, resume_at=now + 1.01)
    restart = pace.rate(now + 1.01)
    assert restart is not None
    assert MIN_RATE <= restart <= BETA * refused_at
    # Climbs back towards the refused rate, and is never below its restart.
    assert restart < pace.rate(now + 4) <= refused_at * 1.01  # type: ignore[operator]


def test_never_slower_than_the_floor() -> None:
    pace = AdaptiveRate(now=0.0)
    now = 0.0
    for _ in range(50):
        now += 1.0
        pace.accepted(now)
        pace.throttled(now=now, sent_at=now, resume_at=now + 1.0)
    assert pace.rate(now + 1.0) == MIN_RATE
    assert pace.reserve(now + 1.0) <= 1 / MIN_RATE


def test_refusals_with_nothing_accepted_between_leave_the_pace_alone() -> None:
    pace = AdaptiveRate(now=0.0)
    for i in range(100):
        pace.accepted(i * 0.01)
    pace.throttled(now=1.0, sent_at=0.99, resume_at=2.0)
    searching = pace.rate(2.0)
    # The API went on refusing for a while (a hiccup): the pauses hold the launches back.
    for n in range(20):
        pace.throttled(now=2.0 + n, sent_at=2.0 + n, resume_at=3.0 + n)
    assert pace.rate(2.0) == searching


def test_past_the_plateau_it_probes_faster_and_faster() -> None:
    pace = AdaptiveRate(now=0.0)
    pace.accepted(0.0)
    pace.throttled(now=0.1, sent_at=0.1, resume_at=1.1)
    now = 2.0
    pace.accepted(now)
    pace.throttled(now=now, sent_at=now, resume_at=now + 1.0)
    curve = pace.curve
    assert curve is not None
    probe = now + 1.0 + curve.k + PLATEAU
    at_plateau = pace.rate(probe)
    assert at_plateau is not None
    assert at_plateau == pytest.approx(curve.ceiling, rel=0.1)
    later = pace.rate(probe + 4 * PROBE_DOUBLING)
    assert later is not None
    assert later >= 15 * curve.ceiling


def test_after_the_search_it_cruises_below_the_estimate_for_the_whole_plateau() -> None:
    pace = AdaptiveRate(now=0.0)
    pace.accepted(0.0)
    pace.throttled(now=0.1, sent_at=0.1, resume_at=1.1)
    now = 1.1
    while (pace.rate(now) or 0) < 120:
        pace.accepted(pace.reserve(now) + now)
        now += 1 / (pace.rate(now) or 1)
    refused_at = pace.rate(now)
    assert refused_at is not None
    pace.throttled(now=now, sent_at=now, resume_at=now + 1.0)
    curve = pace.curve
    assert curve is not None
    assert curve.ceiling <= CRUISE * refused_at
    assert curve.start <= BETA / CRUISE * curve.ceiling
    at_ceiling = curve.since + curve.k
    # Flat at the ceiling all through the plateau: no 429 is sought for PLATEAU seconds.
    for moment in (0.0, 0.25, 0.5, 0.99):
        assert pace.rate(at_ceiling + moment * PLATEAU) == pytest.approx(curve.ceiling)
    assert pace.rate(at_ceiling + PLATEAU + 1.0) > curve.ceiling  # type: ignore[operator]


def simulate(limit: float, burst: float, latency: float, seconds: float) -> tuple[float, float]:
    """40 launches in flight at most, paced against a token-bucket API that answers
    429 + Retry-After: 1 (virtual time; the client's pause is honoured).

    Returns (accepted launches a second over the second half, share of sends refused).
    """
    pace = AdaptiveRate(now=0.0)
    tokens, stamp = burst, 0.0
    now, paused_until = 0.0, 0.0
    in_flight: list[tuple[float, float, bool]] = []  # (answer arrives, sent at, accepted)
    sent = refused = accepted_late = 0

    def hear_answers() -> None:
        nonlocal paused_until
        for answer in sorted(a for a in in_flight if a[0] <= now):
            in_flight.remove(answer)
            arrives, sent_at, ok = answer
            if ok:
                pace.accepted(arrives)
            else:
                paused_until = max(paused_until, arrives + 1.0)
                pace.throttled(now=arrives, sent_at=sent_at, resume_at=arrives + 1.0)

    while now < seconds:
        hear_answers()
        if now < paused_until:
            now = paused_until
            continue
        if len(in_flight) >= 40:
            now = min(a[0] for a in in_flight)
            continue
        now += pace.reserve(now)
        hear_answers()
        if now < paused_until:
            continue  # a pause began while this launch waited for its turn
        tokens = min(burst, tokens + (now - stamp) * limit)
        stamp = now
        ok = tokens >= 1
        tokens -= ok
        sent += 1
        refused += not ok
        accepted_late += ok and now > seconds / 2
        in_flight.append((now + latency, now, ok))
        now += 1e-4  # the client's own work per launch
    return accepted_late / (seconds / 2), refused / sent


@pytest.mark.parametrize("latency", [0.001, 0.1])
@pytest.mark.parametrize(("limit", "burst"), [(100, 10), (200, 20), (200, 200)])
def test_it_finds_a_limit_and_stays_just_below_it(
    limit: float, burst: float, latency: float
) -> None:
    rate, refused = simulate(limit, burst, latency, seconds=60)
    # Never above what the API can grant (its rate, plus its burst spread over the half).
    assert 0.85 * limit <= rate <= limit + burst / 30
    assert refused < 0.02
    assert not math.isnan(rate)
