"""LocalRateBudget: buckets and pauses per kind, on an injected clock."""

from __future__ import annotations

import math

import pytest

from transactionlink_async._ratelimit import LocalRateBudget, RateBudget

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_tokens_per_kind_queue_callers_at_the_rate() -> None:
    clock = Clock()
    budget: RateBudget = LocalRateBudget(clock)
    waits = [await budget.take("api", per_second=4, burst=2) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.25, 0.5])
    assert await budget.take("other", per_second=4, burst=2) == 0.0  # its own bucket
    clock.now += 10
    assert await budget.take("api", per_second=4, burst=2) == 0.0


async def test_a_pause_counts_down_is_never_shortened_and_is_forgotten() -> None:
    clock = Clock()
    budget = LocalRateBudget(clock)
    assert await budget.paused_for("api") == 0.0
    await budget.pause("api", 2.0)
    await budget.pause("api", 0.5)  # a shorter ask does not cut the pause
    clock.now += 0.5
    assert await budget.paused_for("api") == pytest.approx(1.5)
    assert await budget.paused_for("other") == 0.0
    await budget.pause("api", 3.0)
    assert await budget.paused_for("api") == pytest.approx(3.0)
    clock.now += 3.0
    assert await budget.paused_for("api") == 0.0
    assert await budget.paused_for("api") == 0.0


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -1.0])
async def test_a_pause_must_be_a_finite_time(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds"):
        await LocalRateBudget().pause("api", seconds)


@pytest.mark.parametrize(
    ("per_second", "burst", "message"),
    [
        (0.0, 1.0, "per_second must be a finite number > 0"),
        (math.nan, 1.0, "per_second must be a finite number > 0"),
        (1.0, 0.0, "burst must be a finite number >= 1"),
        (1.0, math.inf, "burst must be a finite number >= 1"),
    ],
)
async def test_a_take_needs_a_real_rate(per_second: float, burst: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await LocalRateBudget().take("api", per_second=per_second, burst=burst)


async def test_the_default_clock_is_monotonic() -> None:
    budget = LocalRateBudget()
    await budget.pause("api", 60)
    left = await budget.paused_for("api")
    assert 59 < left <= 60
