"""A pause holds every client of a backend back, whether its budget is read at once or awaited."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from transactionlink_async import (
    OrganizationToken,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    TransactionLink,
)
from transactionlink_async._batches.wake import WakeRegistry
from transactionlink_async.coordination import (
    Coordination,
    KnownPauses,
    LocalCoordination,
    Member,
    RateBudget,
    WakeNews,
    WakeTarget,
)
from transactionlink_async.coordination._local_budget import LocalRateBudget
from transactionlink_async.coordination._token_share import TokenShare
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


class AwaitedBudget:
    """A RateBudget with the protocol's three coroutines and nothing else."""

    def __init__(self, inner: RateBudget) -> None:
        self._inner = inner
        self.asked = 0

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        return await self._inner.take(kind, per_second=per_second, burst=burst)

    async def pause(self, kind: str, seconds: float) -> None:
        await self._inner.pause(kind, seconds)

    async def paused_for(self, kind: str) -> float:
        self.asked += 1
        return await self._inner.paused_for(kind)


class AwaitedMember:
    def __init__(self, member: Member, budget: AwaitedBudget) -> None:
        self._member = member
        self._budget = budget

    @property
    def budget(self) -> RateBudget:
        return self._budget

    @property
    def news(self) -> WakeNews:
        return self._member.news

    def tokens_for(self, key: str, secret: str) -> TokenShare | None:
        return self._member.tokens_for(key, secret)

    async def aclose(self) -> None:
        await self._member.aclose()


class ReadAtOnceBudget(AwaitedBudget):
    """A budget that also knows its pauses at once (KnownPauses): both ways counted."""

    def __init__(self, inner: LocalRateBudget) -> None:
        super().__init__(inner)
        self._local = inner
        self.read = 0

    def pause_left(self, kind: str) -> float:
        self.read += 1
        return self._local.pause_left(kind)


class CountingCoordination(LocalCoordination):
    """The in-process backend, its budget behind a counting wrapper: one only awaited
    (the protocol's three coroutines), or one also read at once (KnownPauses)."""

    def __init__(self, *, read_at_once: bool = False) -> None:
        super().__init__()
        self._read_at_once = read_at_once
        self.budgets: list[AwaitedBudget] = []

    def join(self, wakeups: WakeTarget) -> Member:
        member = super().join(wakeups)
        inner = member.budget
        assert isinstance(inner, LocalRateBudget)
        budget = ReadAtOnceBudget(inner) if self._read_at_once else AwaitedBudget(inner)
        self.budgets.append(budget)
        return AwaitedMember(member, budget)


def client(fake: FakeTransactionLink, coordination: Coordination, **kwargs: Any) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        coordination=coordination,
        **kwargs,
    )


@pytest.mark.parametrize("awaited", [False, True], ids=["read-at-once", "awaited"])
async def test_another_clients_429_holds_back_the_next_request(
    fake: FakeTransactionLink, awaited: bool
) -> None:
    coordination = CountingCoordination() if awaited else LocalCoordination()
    execution_id = fake.create_execution()
    fake.inject("GET", "/workflows/*", status=429, retry_after=0.4)
    async with (
        client(fake, coordination, retry=RetryPolicy.no_retries()) as refused,
        client(fake, coordination) as other,
    ):
        with pytest.raises(RateLimitError):
            await refused.workflows.get(execution_id)
        started = anyio.current_time()
        execution = await other.workflows.get(execution_id)
        waited = anyio.current_time() - started
    assert execution.id == execution_id
    assert waited >= 0.4
    if isinstance(coordination, CountingCoordination):
        assert all(b.asked for b in coordination.budgets)  # the awaited way was taken
    refusal = next(e for e in fake.journal if e.status == 429)
    later = [e for e in fake.journal if e.start_seq > refusal.end_seq]  # type: ignore[operator]
    assert len(later) == 1
    assert refusal.finished is not None
    assert later[0].started - refusal.finished >= 0.4


def test_the_in_process_budget_is_read_at_once() -> None:
    assert isinstance(LocalCoordination().join(WakeRegistry()).budget, KnownPauses)


async def test_a_budget_without_pause_left_is_asked_on_every_request(
    fake: FakeTransactionLink,
) -> None:
    coordination = CountingCoordination()
    execution_id = fake.create_execution()
    async with client(fake, coordination) as tl:
        for _ in range(3):
            await tl.workflows.get(execution_id)
    assert coordination.budgets[0].asked >= 3


async def test_a_budget_that_knows_its_pauses_is_read_without_awaiting(
    fake: FakeTransactionLink,
) -> None:
    coordination = CountingCoordination(read_at_once=True)
    execution_id = fake.create_execution()
    async with client(fake, coordination) as tl:
        for _ in range(3):
            await tl.workflows.get(execution_id)
    budget = coordination.budgets[0]
    assert isinstance(budget, ReadAtOnceBudget)
    assert budget.read >= 3
    assert budget.asked == 0


async def test_a_rate_limit_sends_every_request_through_the_awaited_gate(
    fake: FakeTransactionLink,
) -> None:
    coordination = CountingCoordination(read_at_once=True)
    execution_id = fake.create_execution()
    async with client(fake, coordination, rate_limit=RateLimit(1000)) as tl:
        for _ in range(3):
            await tl.workflows.get(execution_id)
    assert coordination.budgets[0].asked >= 3  # the RateLimit's turns are taken there
