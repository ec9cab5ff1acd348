"""The circuit breaker's decisions, pure: when to try Redis, and for how long to leave it alone."""

from __future__ import annotations

import math

import attrs

__all__ = [
    "Admission",
    "BreakerPolicy",
    "BreakerState",
    "admit",
    "after_abandon",
    "after_failure",
    "after_success",
]


@attrs.frozen
class BreakerPolicy:
    """How long a failed Redis is left alone: `first` seconds, doubling up to `longest`."""

    first: float = 0.5
    longest: float = 5.0

    def __attrs_post_init__(self) -> None:
        for name in ("first", "longest"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds")
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number of seconds above 0, got {value}")
        if self.longest < self.first:
            raise ValueError("longest must be at least first")

    def cooldown(self, failures: int) -> float:
        # Capped exponent: a Redis down for days must not overflow the float.
        return min(self.longest, self.first * 2.0 ** min(failures - 1, 60))


@attrs.frozen
class BreakerState:
    """Closed (`open_until` None), open until a time, or half open with one probe in flight."""

    #: Failed probes in a row since the breaker opened (0 while closed).
    failures: int = 0
    open_until: float | None = None
    probing: bool = False

    @property
    def closed(self) -> bool:
        return self.open_until is None


@attrs.frozen
class Admission:
    """Whether a call may go to Redis; a probe is the one call that tests an open breaker."""

    allowed: bool
    probe: bool
    state: BreakerState


def admit(state: BreakerState, now: float) -> Admission:
    """May a call go to Redis now? While open, one probe per cooldown; the rest go local."""
    if state.open_until is None:
        return Admission(allowed=True, probe=False, state=state)
    if now < state.open_until or state.probing:
        return Admission(allowed=False, probe=False, state=state)
    return Admission(allowed=True, probe=True, state=attrs.evolve(state, probing=True))


def after_success(state: BreakerState) -> BreakerState:
    """A call answered: Redis is usable again."""
    return BreakerState()


def after_failure(
    state: BreakerState, now: float, *, probe: bool, policy: BreakerPolicy
) -> BreakerState:
    """A call failed (error or timeout); `probe` says whether it was the open breaker's probe."""
    if state.closed:
        return BreakerState(failures=1, open_until=now + policy.cooldown(1))
    if not probe:
        # A call let through before the breaker opened, failing late: already accounted for.
        return state
    failures = state.failures + 1
    return BreakerState(failures=failures, open_until=now + policy.cooldown(failures))


def after_abandon(state: BreakerState, *, probe: bool) -> BreakerState:
    """A call was cancelled before it said anything about Redis: let the next one probe."""
    return attrs.evolve(state, probing=False) if probe else state
