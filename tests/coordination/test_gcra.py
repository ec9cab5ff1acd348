"""The token bucket arithmetic and the in-process rate budget."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async.coordination._gcra import check_kind, reserve, wait_of
from transactionlink_async.coordination._local_budget import LocalRateBudget

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_gives_its_burst_at_once_then_one_token_per_interval() -> None:
    tat, waits = 0.0, []
    for _ in range(5):
        tat, reservation = reserve(tat, 100.0, per_second=10, burst=3)
        waits.append(wait_of(reservation, 0))
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2])


def test_a_reservation_of_many_spaces_them_as_single_takes_would() -> None:
    _, many = reserve(0.0, 100.0, per_second=4, burst=2, count=5)
    tat, singles = 0.0, []
    for _ in range(5):
        tat, one = reserve(tat, 100.0, per_second=4, burst=2)
        singles.append(wait_of(one, 0))
    assert [wait_of(many, i) for i in range(5)] == pytest.approx(singles)


@given(
    per_second=st.floats(min_value=0.1, max_value=1000),
    burst=st.floats(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_no_more_tokens_are_used_than_the_rate_allows(
    per_second: float, burst: float, gaps: list[float]
) -> None:
    """Tokens used by time t (taken plus waited) never exceed burst + rate * elapsed."""
    now, tat, uses = 0.0, 0.0, []
    for gap in gaps:
        now += gap
        tat, reservation = reserve(tat, now, per_second=per_second, burst=burst)
        uses.append(now + wait_of(reservation, 0))
    uses.sort()
    for index, used_at in enumerate(uses):
        assert index + 1 <= burst + per_second * used_at + 1e-6


async def test_the_local_budget_paces_and_pauses_on_its_clock() -> None:
    clock = Clock()
    budget = LocalRateBudget(clock=clock)
    assert await budget.take("launch", per_second=2, burst=1) == 0
    assert await budget.take("launch", per_second=2, burst=1) == pytest.approx(0.5)
    assert await budget.take("read", per_second=2, burst=1) == 0  # kinds are apart
    await budget.pause("launch", 3)
    await budget.pause("launch", 1)  # never shortened
    clock.now += 1
    assert await budget.paused_for("launch") == pytest.approx(2)
    assert await budget.paused_for("read") == 0
    clock.now += 5
    assert await budget.paused_for("launch") == 0


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf])
async def test_bad_rates_and_pauses_are_refused(bad: float) -> None:
    budget = LocalRateBudget()
    with pytest.raises(ValueError, match="per_second"):
        await budget.take("launch", per_second=bad, burst=1)
    with pytest.raises(ValueError, match="burst"):
        await budget.take("launch", per_second=1, burst=bad)
    if bad != 0:
        with pytest.raises(ValueError, match="seconds"):
            await budget.pause("launch", bad)
    with pytest.raises(TypeError):
        await budget.take("launch", per_second=True, burst=1)


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "é", "a\nb", "k:*"])
def test_kinds_fit_for_key_names_only(bad: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        check_kind(bad)
    with pytest.raises(TypeError):
        check_kind(3)


def test_many_made_up_kinds_do_not_grow_the_budget_without_bound() -> None:
    clock = Clock()
    budget = LocalRateBudget(clock=clock)
    for index in range(2000):
        budget.reserve(f"k{index}", per_second=1000, burst=1)
        clock.now += 0.01
    assert len(budget._tats) <= 300


@given(now=st.floats(min_value=0, max_value=1e9), per_second=st.floats(0.1, 1000))
def test_a_full_bucket_answers_exactly_at_once(now: float, per_second: float) -> None:
    _, reservation = reserve(now, now, per_second=per_second, burst=1)
    assert wait_of(reservation, 0) == 0.0
