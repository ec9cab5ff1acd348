"""Every number the SDK takes: NaN, infinities and extremes either work or are refused."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactionlink_async import (
    OrganizationToken,
    PollPolicy,
    RetryPolicy,
    Timeouts,
    TransactionLink,
)
from transactionlink_async._cli.main import main
from transactionlink_async._retry import RetryMode, backoff_delay, decide_retry, poll_delay
from transactionlink_async.testing import FakeTransactionLink

#: Floats of every kind: NaN, both infinities, zeros, subnormals, huge and negative ones.
any_float = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e308, 1e-300, 1.0, 0.999999]
)
any_number = any_float | st.integers(min_value=-(10**400), max_value=10**400)

RETRY_FIELDS = ["backoff_base", "backoff_cap", "max_retry_after"]
POLL_FIELDS = ["initial", "multiplier", "maximum", "jitter"]
TIMEOUT_FIELDS = ["connect", "read", "total"]


def made_or_refused(cls: type[Any], **kwargs: Any) -> Any:
    """The object, or None when it refused the number with a ValueError saying what is allowed."""
    try:
        return cls(**kwargs)
    except ValueError as exc:
        refusal = str(exc)
    (name,) = kwargs
    assert name in refusal
    assert "must be a finite number" in refusal
    return None


def sane_delay(delay: float) -> None:
    assert math.isfinite(delay)
    assert delay >= 0


@pytest.mark.parametrize("field", RETRY_FIELDS)
@settings(max_examples=150, deadline=None)
@given(value=any_number)
def test_retry_policy_numbers_work_or_are_refused(field: str, value: float) -> None:
    policy = made_or_refused(RetryPolicy, **{field: value})
    if policy is None:
        return
    policy = attrs.evolve(policy, max_attempts=100)
    for retry in range(80):
        sane_delay(backoff_delay(policy, retry))
    for status, headers in ((503, {}), (429, {"Retry-After": "1"})):
        decision = decide_retry(
            policy, mode=RetryMode.IDEMPOTENT, attempt=1, status=status, headers=headers
        )
        delay = getattr(decision, "delay", None)
        if delay is not None:
            sane_delay(delay)


@pytest.mark.parametrize("field", POLL_FIELDS)
@settings(max_examples=150, deadline=None)
@given(value=any_number)
def test_poll_policy_numbers_work_or_are_refused(field: str, value: float) -> None:
    policy = made_or_refused(PollPolicy, **{field: value})
    if policy is None:
        return
    for poll in range(0, 400, 7):
        delay = poll_delay(policy, poll)
        sane_delay(delay)
        assert delay > 0
    sane_delay(poll_delay(policy, 3, retry_after=0.0))


@pytest.mark.parametrize("field", TIMEOUT_FIELDS)
@settings(max_examples=150, deadline=None)
@given(value=any_number)
def test_timeouts_numbers_work_or_are_refused(field: str, value: float) -> None:
    timeouts = made_or_refused(Timeouts, **{field: value})
    if timeouts is not None:
        # What aiohttp is given must be usable: its timers overflowed on infinity.
        timeout = timeouts.client_timeout()
        assert all(
            t is None or (math.isfinite(t) and t > 0)
            for t in (timeout.total, timeout.connect, timeout.sock_read)
        )


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (PollPolicy, "maximum", math.nan),
        (PollPolicy, "initial", math.nan),
        (PollPolicy, "multiplier", math.nan),
        (PollPolicy, "jitter", math.nan),
        (RetryPolicy, "backoff_base", math.nan),
        (RetryPolicy, "backoff_cap", math.nan),
        (RetryPolicy, "max_retry_after", math.nan),
        (Timeouts, "connect", math.inf),
        (Timeouts, "read", math.nan),
        (Timeouts, "total", -math.inf),
        (RetryPolicy, "backoff_cap", math.inf),
        (PollPolicy, "initial", 10**400),
    ],
)
def test_the_numbers_found_accepted_are_refused(cls: type[Any], field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{field}.* must be a finite number"):
        cls(**{field: value})


@pytest.mark.parametrize("value", ["1", None, True, [1]])
def test_what_is_not_a_number_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="must be a number"):
        RetryPolicy(backoff_base=value)
    with pytest.raises(TypeError, match="must be a number"):
        PollPolicy(maximum=value)
    if value is not None:
        with pytest.raises(TypeError, match="must be a number"):
            Timeouts(read=value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "timeouts",
    [
        Timeouts(connect=1e300, read=1e300, total=1e300),
        Timeouts(connect=None, read=1e300, total=None),
        Timeouts(connect=1e9, read=None, total=1e9),
    ],
)
async def test_the_largest_timeouts_accepted_work(
    fake: FakeTransactionLink, timeouts: Timeouts
) -> None:
    execution_id = fake.create_execution()
    poll = PollPolicy(initial=1e-3, multiplier=1e300, maximum=1e300)
    async with TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, timeouts=timeouts
    ) as tl:
        assert (await tl.workflows.get(execution_id)).id == execution_id
        done = await tl.workflows.wait_for_completion(execution_id, timeout=math.inf, poll=poll)
        assert done.is_final


@pytest.mark.parametrize("flag", ["--timeout", "--poll-interval"])
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999", "0"])
def test_the_command_line_refuses_numbers_that_would_not_work(
    flag: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["wait", "x", f"{flag}={text}"]) == 2
    assert "expected a positive number of seconds" in capsys.readouterr().err
