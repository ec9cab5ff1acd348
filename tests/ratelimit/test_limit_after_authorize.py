"""A RateLimit turn is taken once the token is at hand, so a slow authorize causes no burst."""

from __future__ import annotations

import itertools

import anyio
import pytest

from transactionlink_async import ApiKey, RateLimit, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

RATE = 20.0


async def test_requests_waiting_for_the_first_token_go_out_at_the_limit_not_together(
    fake: FakeTransactionLink,
) -> None:
    # Turns taken before the token came would all be sent the moment it comes.
    fake.inject("POST", "/auth/authorize", delay=0.5)
    ids = [fake.create_execution() for _ in range(6)]
    async with (
        TransactionLink(
            ApiKey(fake.api_key, fake.api_secret),
            base_url=fake.base_url,
            rate_limit=RateLimit(RATE),
        ) as tl,
        anyio.create_task_group() as tg,
    ):
        for execution_id in ids:
            tg.start_soon(tl.workflows.get, execution_id)
    sent = sorted(entry.started for entry in fake.requests("GET", "/workflows/*"))
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert min(gaps) > 0.8 / RATE, gaps


async def test_requests_that_got_their_turn_during_a_renewal_go_out_at_the_limit(
    fake: FakeTransactionLink,
) -> None:
    # Tokens of 4 s are renewed at half their life; the renewal takes 0.2 s. Turns handed
    # out meanwhile go out with the token still valid, not all together at its end.
    fake.set_access_token_lifetime(4.0)
    fake.inject("POST", "/auth/refresh", delay=0.2, times=None)
    execution_id = fake.create_execution()
    async with TransactionLink(
        ApiKey(fake.api_key, fake.api_secret),
        base_url=fake.base_url,
        rate_limit=RateLimit(RATE),
    ) as tl:

        async def calls() -> None:
            for _ in range(7):
                await tl.workflows.get(execution_id)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(calls)
    assert fake.count("POST", "/auth/refresh") >= 1
    sent = sorted(entry.started for entry in fake.requests("GET", "/workflows/*"))
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert min(gaps) > 0.5 / RATE, gaps
