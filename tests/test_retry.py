"""The retry and poll decisions, as pure functions: no network, no sleeping."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async._retry import (
    WEBHOOKS_RECENT,
    Failure,
    GiveUp,
    PollPolicy,
    RetryAfterTooLong,
    RetryIn,
    RetryMode,
    RetryPolicy,
    backoff_delay,
    decide_retry,
    parse_retry_after,
    poll_delay,
    safety_delay,
    webhooks_flowing,
)

POLICY = RetryPolicy()


def top(lo: float, hi: float) -> float:
    return hi


def test_defaults_match_the_contract() -> None:
    assert POLICY.max_attempts == 4
    assert POLICY.backoff_base == 0.5
    assert POLICY.backoff_cap == 8.0
    assert POLICY.max_retry_after == 60.0
    assert POLICY.retry_statuses == {408, 429, 500, 502, 503, 504}


@pytest.mark.parametrize(
    ("retry", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]
)
def test_full_jitter_ceiling_doubles_up_to_the_cap(retry: int, ceiling: float) -> None:
    seen: list[tuple[float, float]] = []

    def record(lo: float, hi: float) -> float:
        seen.append((lo, hi))
        return hi

    assert backoff_delay(POLICY, retry, record) == ceiling
    assert seen == [(0.0, ceiling)]


@given(st.integers(min_value=0, max_value=10_000))
def test_backoff_is_never_negative_nor_above_the_cap(retry: int) -> None:
    assert 0.0 <= backoff_delay(POLICY, retry) <= POLICY.backoff_cap


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_reads_retry_transient_statuses(status: int) -> None:
    decision = decide_retry(POLICY, mode=RetryMode.IDEMPOTENT, attempt=1, status=status, rand=top)
    assert decision == RetryIn(0.5)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
def test_other_statuses_are_not_retried(status: int) -> None:
    decision = decide_retry(POLICY, mode=RetryMode.IDEMPOTENT, attempt=1, status=status)
    assert isinstance(decision, GiveUp)


@pytest.mark.parametrize("failure", list(Failure))
def test_reads_retry_transport_failures(failure: Failure) -> None:
    decision = decide_retry(POLICY, mode=RetryMode.IDEMPOTENT, attempt=1, failure=failure)
    assert isinstance(decision, RetryIn)


def test_attempts_are_bounded() -> None:
    assert isinstance(
        decide_retry(POLICY, mode=RetryMode.IDEMPOTENT, attempt=3, status=503), RetryIn
    )
    assert isinstance(
        decide_retry(POLICY, mode=RetryMode.IDEMPOTENT, attempt=4, status=503), GiveUp
    )


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_creating_requests_are_never_resent_after_an_answer(status: int) -> None:
    decision = decide_retry(POLICY, mode=RetryMode.CREATING, attempt=1, status=status)
    assert isinstance(decision, GiveUp)
    assert "creates" in decision.reason


def test_creating_requests_are_not_resent_when_they_may_have_arrived() -> None:
    decision = decide_retry(POLICY, mode=RetryMode.CREATING, attempt=1, failure=Failure.NO_ANSWER)
    assert isinstance(decision, GiveUp)


def test_creating_requests_are_resent_when_they_never_left_or_got_429() -> None:
    assert isinstance(
        decide_retry(POLICY, mode=RetryMode.CREATING, attempt=1, failure=Failure.NOT_SENT), RetryIn
    )
    assert isinstance(decide_retry(POLICY, mode=RetryMode.CREATING, attempt=1, status=429), RetryIn)


def test_never_mode_never_retries() -> None:
    for outcome in ({"status": 503}, {"failure": Failure.NOT_SENT}, {"status": 429}):
        assert isinstance(
            decide_retry(POLICY, mode=RetryMode.NEVER, attempt=1, **outcome),
            GiveUp,
        )


def test_retry_after_seconds_wins_over_backoff() -> None:
    decision = decide_retry(
        POLICY, mode=RetryMode.IDEMPOTENT, attempt=1, status=503, headers={"retry-after": "2"}
    )
    assert decision == RetryIn(2.0)


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=5), usegmt=True)
    decision = decide_retry(
        POLICY,
        mode=RetryMode.IDEMPOTENT,
        attempt=1,
        status=429,
        headers={"Retry-After": header},
        now=now.timestamp(),
    )
    assert decision == RetryIn(5.0)


def test_long_retry_after_on_429_raises_at_once() -> None:
    for mode in RetryMode:
        decision = decide_retry(
            POLICY, mode=mode, attempt=1, status=429, headers={"Retry-After": "3600"}
        )
        assert decision == RetryAfterTooLong(3600.0)


def test_long_retry_after_on_503_gives_up() -> None:
    decision = decide_retry(
        POLICY, mode=RetryMode.IDEMPOTENT, attempt=1, status=503, headers={"Retry-After": "61"}
    )
    assert isinstance(decision, GiveUp)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  3 ", 3.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("1.5", 1.5),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=2_000_000_000.0) == expected


@given(st.text(max_size=40))
def test_parse_retry_after_never_crashes(value: str) -> None:
    result = parse_retry_after(value, now=1_700_000_000.0)
    assert result is None or result >= 0


def test_exactly_one_outcome_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        decide_retry(POLICY, mode=RetryMode.IDEMPOTENT, attempt=1)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff_base"):
        RetryPolicy(backoff_base=0)
    with pytest.raises(ValueError, match="multiplier"):
        PollPolicy(multiplier=0.5)
    with pytest.raises(ValueError, match="jitter"):
        PollPolicy(jitter=1.0)
    assert RetryPolicy.no_retries().max_attempts == 1


def test_poll_schedule_grows_by_the_multiplier_to_the_ceiling() -> None:
    policy = PollPolicy()
    mid = [poll_delay(policy, n, rand=lambda lo, hi: 0.0) for n in range(12)]
    assert mid[:4] == [1.0, 1.5, 2.25, 3.375]
    assert mid[-1] == 30.0
    assert mid == sorted(mid)


@given(st.integers(min_value=0, max_value=1000))
def test_poll_jitter_stays_within_20_percent(poll: int) -> None:
    policy = PollPolicy()
    base = min(30.0, 1.5**poll) if poll < 100 else 30.0
    delay = poll_delay(policy, poll)
    assert base * 0.8 - 1e-9 <= delay <= base * 1.2 + 1e-9


def test_server_retry_after_wins_over_the_poll_schedule() -> None:
    assert poll_delay(PollPolicy(), 5, retry_after=7.0) == 7.0
    assert (
        poll_delay(PollPolicy(honour_retry_after=False), 0, retry_after=7.0, rand=lambda a, b: 0)
        == 1.0
    )


@pytest.mark.parametrize("hint", [0.0, 0.001])
def test_a_zero_or_tiny_retry_after_never_makes_polling_spin(hint: float) -> None:
    assert poll_delay(PollPolicy(initial=1.0), 7, retry_after=hint) == 1.0


@given(
    mode=st.sampled_from([None, True, False]),
    last=st.none() | st.floats(min_value=0, max_value=1e6),
    now=st.floats(min_value=0, max_value=2e6),
)
def test_webhooks_flow_when_said_so_or_after_a_recent_delivery(
    mode: bool | None, last: float | None, now: float
) -> None:
    flowing = webhooks_flowing(PollPolicy(webhooks=mode), last, now)
    if mode is not None:
        assert flowing is mode
    else:
        assert flowing is (last is not None and now - last <= WEBHOOKS_RECENT)


@given(
    st.floats(min_value=0.01, max_value=1e5),
    st.floats(min_value=0, max_value=0.99),
    st.integers(min_value=0, max_value=10**7),
    st.floats(min_value=1e-3, max_value=1e6),
)
def test_the_safety_net_interval_stays_within_its_jitter_and_its_rate(
    interval: float, jitter: float, waits: int, rate: float
) -> None:
    policy = PollPolicy(safety_interval=interval, jitter=jitter, safety_rate=rate)
    # The interval, or longer when that many waits' checks would pass the rate.
    expected = max(interval, waits / rate)
    delay = safety_delay(policy, waits)
    assert expected * (1 - jitter) * (1 - 1e-9) <= delay <= expected * (1 + jitter) * (1 + 1e-9)


def test_the_safety_net_defaults_and_validation() -> None:
    assert PollPolicy().safety_interval == 60.0
    assert PollPolicy().webhooks is None
    with pytest.raises(ValueError, match="safety_interval"):
        PollPolicy(safety_interval=0)
    assert PollPolicy().safety_rate == 100.0
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="safety_rate"):
            PollPolicy(safety_rate=bad)
    with pytest.raises(TypeError, match="webhooks"):
        PollPolicy(webhooks="yes")  # type: ignore[arg-type]
