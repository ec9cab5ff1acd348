"""The pure rate-limit decisions: RateLimit, token buckets, pauses and their jitter, kinds."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._ratelimit import RateLimit
from transactionlink_async._ratelimit.bucket import Bucket, take_token
from transactionlink_async._ratelimit.kinds import WHOLE_API, request_kind
from transactionlink_async._ratelimit.pause import JITTER_FLOOR, JITTER_SHARE, jittered

# -- RateLimit -----------------------------------------------------------------------------


def test_a_rate_limit_holds_floats_and_defaults_to_even_spacing() -> None:
    limit = RateLimit(10)
    assert (limit.per_second, limit.burst) == (10.0, 1.0)
    assert RateLimit(2.5, burst=4) == RateLimit(per_second=2.5, burst=4.0)
    with pytest.raises(AttributeError):
        limit.per_second = 20  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((0,), {}, ValueError, r"per_second must be a finite number > 0, got 0"),
        ((-1,), {}, ValueError, r"per_second must be a finite number > 0"),
        ((math.nan,), {}, ValueError, r"per_second must be a finite number > 0, got nan"),
        ((math.inf,), {}, ValueError, r"per_second must be a finite number > 0, got inf"),
        ((10,), {"burst": 0.5}, ValueError, r"burst must be a finite number >= 1, got 0.5"),
        ((10,), {"burst": math.nan}, ValueError, r"burst must be a finite number >= 1"),
        ((10,), {"burst": math.inf}, ValueError, r"burst must be a finite number >= 1"),
        (("10",), {}, TypeError, r"per_second must be a number, got str"),
        ((True,), {}, TypeError, r"per_second must be a number, got bool"),
        ((10,), {"burst": None}, TypeError, r"burst must be a number, got NoneType"),
    ],
)
def test_bad_rate_limits_say_what_is_allowed(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RateLimit(*args, **kwargs)


def test_burst_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        RateLimit(10, 5)  # type: ignore[call-arg]


# -- token buckets -------------------------------------------------------------------------


def test_a_new_bucket_is_full_and_then_queues_callers_in_turn() -> None:
    bucket, waits = None, []
    for _ in range(5):
        bucket, wait = take_token(bucket, now=0.0, per_second=10, burst=2)
        waits.append(wait)
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])
    # Time refills it, never above the burst.
    assert take_token(Bucket(tokens=-1.0, stamp=0.0), now=100.0, per_second=10, burst=2) == (
        Bucket(tokens=1.0, stamp=100.0),
        0.0,
    )


def test_a_clock_reading_from_the_past_adds_nothing() -> None:
    bucket, wait = take_token(Bucket(tokens=0.5, stamp=10.0), now=9.0, per_second=1, burst=1)
    assert bucket == Bucket(tokens=-0.5, stamp=10.0)
    assert wait == pytest.approx(0.5)


@given(
    per_second=st.floats(0.1, 1000),
    burst=st.floats(1, 20),
    gaps=st.lists(st.floats(0, 1), min_size=1, max_size=200),
)
def test_the_sends_a_bucket_allows_never_exceed_the_rate(
    per_second: float, burst: float, gaps: list[float]
) -> None:
    bucket, now, sends = None, 0.0, []
    for gap in gaps:
        now += gap
        bucket, wait = take_token(bucket, now=now, per_second=per_second, burst=burst)
        assert wait >= 0.0
        sends.append(now + wait)
    sends.sort()
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            allowed = burst + per_second * (sends[j] - sends[i])
            assert j - i + 1 <= allowed + 1e-6 * max(1.0, allowed)


# -- pauses and jitter ---------------------------------------------------------------------


@given(
    seconds=st.floats(0, 1e6),
    draw=st.floats(-1e9, 1e9) | st.just(math.nan),
)
def test_jitter_never_shortens_a_pause(seconds: float, draw: float) -> None:
    # Even a random source that misbehaves cannot make it shorter.
    assert jittered(seconds, lambda low, high: draw) >= seconds


@given(seconds=st.floats(0, 3600))
def test_jitter_adds_at_most_its_share(seconds: float) -> None:
    longest = jittered(seconds, lambda low, high: high)
    assert longest == pytest.approx(seconds * (1 + JITTER_SHARE) + JITTER_FLOOR)
    assert jittered(seconds, lambda low, high: low) == seconds


def test_jitter_spreads_callers_out() -> None:
    waits = {jittered(1.0) for _ in range(50)}
    assert len(waits) > 40
    assert all(1.0 <= w <= 1.0 + JITTER_SHARE + JITTER_FLOOR for w in waits)


# -- kinds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/workflows"),
        ("GET", "/workflows/abc"),
        ("POST", "/workflows/abc/cancel"),
        ("POST", "/auth/authorize"),
        ("GET", "/auth/webhooks/key/k1"),
    ],
)
def test_every_request_shares_one_kind(method: str, path: str) -> None:
    # The safe reading of an undocumented limit: one for the whole API.
    assert request_kind(method, path) == WHOLE_API
