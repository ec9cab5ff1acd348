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
