"""Clients without Redis: today's behaviour, plus the news a wait starting late can use."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from support import FAST_RETRY

from transactionlink_async import OrganizationToken, PollPolicy, TransactionLink
from transactionlink_async.coordination import LocalCoordination
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

SLOW_POLL = PollPolicy(initial=30, multiplier=1.0, maximum=30, jitter=0.0)


async def test_a_wait_starting_after_the_delivery_confirms_at_once(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = fake.create_execution(status="COMPLETED")
    await tl.webhooks.handle(
        *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
    )
    with anyio.fail_after(2):
        execution = await tl.workflows.wait_for_completion(execution_id, poll=SLOW_POLL)
    assert execution.status == "COMPLETED"
    assert fake.count("GET", f"/workflows/{execution_id}") == 1


async def test_news_of_a_status_that_ends_nothing_does_not_skip_the_first_sleep(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    running = fake.create_execution(status="RUNNING")
    done = fake.create_execution(status="COMPLETED")
    for execution_id, status in ((running, "AWAITING"), (done, "COMPLETED")):
        await tl.webhooks.handle(
            *fake.webhooks.signed({"workflowId": execution_id, "status": status})
        )
    sleeping = asyncio.ensure_future(tl.workflows.wait_for_completion(running, poll=SLOW_POLL))
    late = asyncio.ensure_future(tl.workflows.wait_for_completion(done, poll=SLOW_POLL))
    # The wait with final news checks at once; the other, started first, still sleeps.
    with anyio.fail_after(5):
        assert (await late).status == "COMPLETED"
    assert fake.count("GET", f"/workflows/{running}") == 0
    assert await fake.next_request("GET", f"/workflows/{running}", timeout=0.3) is None
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping


async def test_clients_sharing_a_local_coordination_wake_each_other(
    fake: FakeTransactionLink,
) -> None:
    shared = LocalCoordination()
    receiver, waiter = (
        TransactionLink(
            OrganizationToken(fake.org_token),
            base_url=fake.base_url,
            retry=FAST_RETRY,
            coordination=shared,
        )
        for _ in range(2)
    )
    async with receiver, waiter:
        execution_id = fake.create_execution(status="RUNNING")
        wait = asyncio.ensure_future(
            waiter.workflows.wait_for_completion(execution_id, poll=SLOW_POLL)
        )
        await anyio.sleep(0.05)
        fake.set_status(execution_id, "COMPLETED")
        await receiver.webhooks.handle(
            *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
        )
        with anyio.fail_after(2):
            assert (await wait).status == "COMPLETED"
