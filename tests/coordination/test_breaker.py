"""The circuit breaker's decisions: open on failure, one probe per cooldown, closed on success."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async.coordination._breaker import (
    BreakerPolicy,
    BreakerState,
    admit,
    after_abandon,
    after_failure,
    after_success,
)

POLICY = BreakerPolicy(first=0.5, longest=5.0)


def test_a_closed_breaker_lets_every_call_through() -> None:
    admission = admit(BreakerState(), now=10.0)
    assert admission.allowed
    assert not admission.probe
    assert admission.state == BreakerState()


def test_a_failure_opens_it_and_calls_go_local_until_the_cooldown_ends() -> None:
    state = after_failure(BreakerState(), 10.0, probe=False, policy=POLICY)
    assert not state.closed
    assert not admit(state, 10.2).allowed
    probe = admit(state, 10.5)
    assert probe.allowed
    assert probe.probe
    # While the probe is out, nobody else touches Redis.
    assert not admit(probe.state, 10.6).allowed


def test_a_failed_probe_doubles_the_cooldown_and_a_late_straggler_changes_nothing() -> None:
    opened = after_failure(BreakerState(), 10.0, probe=False, policy=POLICY)
    straggler = after_failure(opened, 10.1, probe=False, policy=POLICY)
    assert straggler == opened
    probing = admit(opened, 10.5).state
    again = after_failure(probing, 10.5, probe=True, policy=POLICY)
    assert again.failures == 2
    assert again.open_until == pytest.approx(11.5)
    assert not again.probing


def test_success_closes_it_and_an_abandoned_probe_lets_the_next_call_probe() -> None:
    opened = after_failure(BreakerState(), 0.0, probe=False, policy=POLICY)
    probing = admit(opened, 1.0).state
    assert admit(after_abandon(probing, probe=True), 1.0).probe
    assert after_success(probing).closed


@given(st.integers(min_value=1, max_value=10_000))
def test_the_cooldown_grows_but_never_past_the_longest(failures: int) -> None:
    cooldown = POLICY.cooldown(failures)
    assert POLICY.first <= cooldown <= POLICY.longest
    assert POLICY.cooldown(failures + 1) >= cooldown


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf])
def test_a_policy_refuses_nonsense(bad: float) -> None:
    with pytest.raises(ValueError, match="first"):
        BreakerPolicy(first=bad)
    with pytest.raises(TypeError):
        BreakerPolicy(first=True)
    with pytest.raises(ValueError, match="at least"):
        BreakerPolicy(first=2, longest=1)
