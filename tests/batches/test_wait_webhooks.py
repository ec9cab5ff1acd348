"""Webhook-first waiting: while deliveries flow, polling stretches to a slow safety net that
still catches a delivery that never comes; failures and doubts go back to the schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import attrs
import pytest

from transactionlink_async import (
    OrganizationToken,
    PollPolicy,
    RetryPolicy,
    TransactionLink,
    WorkflowStatus,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

SAFETY = 0.4
# Every 20 ms on the normal schedule; every 0.4 s as a safety net.
FAST = PollPolicy(initial=0.02, multiplier=1.0, maximum=0.02, jitter=0.0, safety_interval=SAFETY)


@pytest.fixture
async def tl(fake: FakeTransactionLink) -> AsyncIterator[TransactionLink]:
    async with TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        retry=RetryPolicy.no_retries(),
    ) as client:
        yield client


async def execution(fake: FakeTransactionLink, tl: TransactionLink, status: str) -> str:
    fake.define_workflow("never", statuses=("RUNNING",))
    execution_id = (await tl.workflows.initialise(workflow_definition_id="never", locale="en")).id
    fake.set_status(execution_id, status)
    return execution_id


def gets(fake: FakeTransactionLink, execution_id: str) -> list[float]:
    return [e.started for e in fake.requests("GET", f"/workflows/{execution_id}")]


async def test_after_a_delivery_a_lost_one_is_caught_by_the_safety_net(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    # A delivery for another execution shows that webhooks reach this client...
    tl._handle.wakeups.wake("some-other-execution")
    # ...so this one, finished, whose delivery never comes, is found by the safety net.
    execution_id = await execution(fake, tl, "COMPLETED")
    began = time.monotonic()
    done = await asyncio.wait_for(tl.workflows.wait_for_completion(execution_id, poll=FAST), 5)
    assert done.status is WorkflowStatus.COMPLETED
    [checked] = gets(fake, execution_id)
    assert SAFETY - 0.02 <= checked - began < SAFETY + 0.3


async def test_without_deliveries_the_schedule_is_the_normal_one(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await execution(fake, tl, "COMPLETED")
    began = time.monotonic()
    await asyncio.wait_for(tl.workflows.wait_for_completion(execution_id, poll=FAST), 5)
    [checked] = gets(fake, execution_id)
    assert checked - began < SAFETY / 2


async def test_webhooks_true_stretches_from_the_start(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await execution(fake, tl, "COMPLETED")
    began = time.monotonic()
    policy = PollPolicy(initial=0.02, jitter=0.0, safety_interval=SAFETY, webhooks=True)
    await asyncio.wait_for(tl.workflows.wait_for_completion(execution_id, poll=policy), 5)
    [checked] = gets(fake, execution_id)
    assert checked - began >= SAFETY - 0.02


async def test_webhooks_false_never_stretches(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    tl._handle.wakeups.wake("some-other-execution")
    execution_id = await execution(fake, tl, "COMPLETED")
    began = time.monotonic()
    policy = PollPolicy(initial=0.02, jitter=0.0, safety_interval=SAFETY, webhooks=False)
    await asyncio.wait_for(tl.workflows.wait_for_completion(execution_id, poll=policy), 5)
    [checked] = gets(fake, execution_id)
    assert checked - began < SAFETY / 2


async def test_a_delivery_still_ends_a_stretched_wait_with_one_get(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await execution(fake, tl, "RUNNING")
    policy = PollPolicy(initial=0.02, safety_interval=60.0, webhooks=True)
    wait = asyncio.ensure_future(tl.workflows.wait_for_completion(execution_id, poll=policy))
    await asyncio.sleep(0.05)
    fake.set_status(execution_id, "COMPLETED")
    began = time.monotonic()
    tl._handle.wakeups.wake(execution_id)
    done = await asyncio.wait_for(wait, 2)
    assert time.monotonic() - began < 0.2
    assert done.status is WorkflowStatus.COMPLETED
    assert len(gets(fake, execution_id)) == 1


async def test_a_sleep_begun_before_deliveries_is_stretched_when_its_time_comes(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await execution(fake, tl, "COMPLETED")
    policy = PollPolicy(initial=0.15, jitter=0.0, safety_interval=0.5)
    began = time.monotonic()
    wait = asyncio.ensure_future(tl.workflows.wait_for_completion(execution_id, poll=policy))
    await asyncio.sleep(0.05)
    tl._handle.wakeups.wake("some-other-execution")  # webhooks begin to flow
    await asyncio.wait_for(wait, 5)
    [checked] = gets(fake, execution_id)
    assert checked - began >= 0.5 - 0.02


async def test_a_failed_check_is_tried_again_on_the_schedule_not_the_safety_net(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await execution(fake, tl, "RUNNING")
    policy = PollPolicy(initial=0.02, multiplier=1.0, jitter=0.0, safety_interval=60.0)
    wait = asyncio.ensure_future(
        tl.workflows.wait_for_completion(execution_id, poll=attrs.evolve(policy, webhooks=True))
    )
    await asyncio.sleep(0.05)
    fake.set_status(execution_id, "COMPLETED")
    fake.inject("GET", f"/workflows/{execution_id}", status=503)
    tl._handle.wakeups.wake(execution_id)  # its check fails: the next one comes soon
    done = await asyncio.wait_for(wait, 2)
    assert done.status is WorkflowStatus.COMPLETED
    first, second = gets(fake, execution_id)
    assert second - first < 0.5


async def test_a_woken_check_that_finds_no_final_status_is_followed_on_the_schedule(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = await execution(fake, tl, "RUNNING")
    policy = PollPolicy(initial=0.05, multiplier=1.0, jitter=0.0, safety_interval=60.0)
    wait = asyncio.ensure_future(
        tl.workflows.wait_for_completion(execution_id, poll=attrs.evolve(policy, webhooks=True))
    )
    await asyncio.sleep(0.05)
    tl._handle.wakeups.wake(execution_id)  # "completed", says the delivery; the API lags
    while not gets(fake, execution_id):  # noqa: ASYNC110 - the fake has no event for it
        await asyncio.sleep(0.005)
    fake.set_status(execution_id, "COMPLETED")
    done = await asyncio.wait_for(wait, 2)
    assert done.status is WorkflowStatus.COMPLETED
    first, second = gets(fake, execution_id)
    assert second - first < 0.5


async def test_the_safety_net_of_many_waits_stays_within_its_rate(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    # 40 executions at 20 safety checks a second: 2 s apart each, not 0.2 s. Each wait
    # counts the waits when it starts its stretched sleep, so the i-th sees at least
    # i + 1 of them; every one is still caught, with no delivery at all.
    count, interval, rate = 40, 0.2, 20.0
    policy = PollPolicy(
        initial=0.02, jitter=0.0, safety_interval=interval, safety_rate=rate, webhooks=True
    )
    ids = [await execution(fake, tl, "COMPLETED") for _ in range(count)]
    began = time.monotonic()
    done = await asyncio.wait_for(
        asyncio.gather(*(tl.workflows.wait_for_completion(i, poll=policy) for i in ids)), 10
    )
    assert {d.status for d in done} == {WorkflowStatus.COMPLETED}
    checked = [gets(fake, i) for i in ids]
    assert all(len(c) == 1 for c in checked)
    for index, [at] in enumerate(checked):
        assert at - began >= max(interval, (index + 1) / rate) - 0.05
    assert checked[-1][0] - began < count / rate + 0.5
