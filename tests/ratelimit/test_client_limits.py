"""One client, one pause and one budget: a TransactionLink against the fake over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from transactionlink_async import (
    ClientClosedError,
    LaunchRequest,
    OrganizationToken,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransactionLink,
)
from transactionlink_async._request import ApiRequest
from transactionlink_async._retry import RetryMode
from transactionlink_async.testing import FakeTransactionLink, JournalEntry

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(backoff_base=0.01, backoff_cap=0.02)


def client(fake: FakeTransactionLink, **kwargs: Any) -> TransactionLink:
    kwargs.setdefault("retry", FAST)
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url, **kwargs)


@pytest.fixture
async def tl(fake: FakeTransactionLink) -> AsyncIterator[TransactionLink]:
    async with client(fake) as tl:
        yield tl


async def launch(tl: TransactionLink, n: int = 0) -> str:
    execution = await tl.workflows.initialise(
        workflow_definition_id="kyc", locale="en", parameters={"n": n}
    )
    return execution.id


async def until(condition: Any, *, within: float = 5.0) -> None:
    """Wait (bounded) until `condition()` holds."""
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await anyio.sleep(0.005)
    pytest.fail("the condition never held")


def first_refusal(fake: FakeTransactionLink) -> JournalEntry:
    return next(e for e in fake.journal if e.status in (429, 503))


def started_after(fake: FakeTransactionLink, entry: JournalEntry) -> list[float]:
    return [e.started for e in fake.journal if e.start_seq > entry.end_seq]  # type: ignore[operator]


# -- the arguments -------------------------------------------------------------------------


def test_rate_limit_must_be_a_rate_limit() -> None:
    token = OrganizationToken("tot_x")
    with pytest.raises(TypeError, match=r"rate_limit must be a RateLimit\(per_second"):
        TransactionLink(token, rate_limit=10)  # type: ignore[arg-type]
    assert TransactionLink(token, rate_limit=RateLimit(5)).rate_limit == RateLimit(5)


# -- one pause for the whole client --------------------------------------------------------


async def test_a_429_pauses_every_new_request_of_the_client(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    fake.inject("POST", "/workflows", status=429, retry_after=0.4)
    async with client(fake, retry=RetryPolicy.no_retries()) as tl:
        with pytest.raises(RateLimitError):
            await launch(tl)
        # Other tasks, other endpoints: all wait out the same pause instead of finding
        # the limit again each on its own (one limit for the whole API).
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(tl.workflows.get, execution_id)
            tg.start_soon(launch, tl)
    entry = first_refusal(fake)
    assert entry.finished is not None
    later = started_after(fake, entry)
    assert len(later) == 11
    assert min(later) - entry.finished >= 0.4
    assert len(fake.executions) == 2


async def test_the_waiters_come_back_spread_out_never_early(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    fake.inject("GET", "/workflows/*", status=429, retry_after=0.3)
    async with client(fake, retry=RetryPolicy.no_retries()) as tl:
        with pytest.raises(RateLimitError):
            await tl.workflows.get(execution_id)
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(tl.workflows.get, execution_id)
    entry = first_refusal(fake)
    assert entry.finished is not None
    later = sorted(started_after(fake, entry))
    assert later[0] - entry.finished >= 0.3  # jitter only lengthens the pause
    assert later[-1] - later[0] >= 0.02  # ... and it spreads those who waited together


async def test_retries_after_a_retry_after_never_come_early_and_not_in_step(
    fake: FakeTransactionLink,
) -> None:
    fake.inject("POST", "/workflows", status=429, retry_after=0.2, times=10)

    async def one() -> float:
        # A client each: each sees its own 429, with nothing else shared.
        async with client(fake) as tl:
            started = time.monotonic()
            await launch(tl)
            return time.monotonic() - started

    delays: list[float] = []

    async def run() -> None:
        delays.append(await one())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(run)
    assert min(delays) >= 0.2
    assert max(delays) - min(delays) >= 0.01
    assert len(fake.executions) == 10


async def test_a_429_without_retry_after_pauses_for_the_backoff_base(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    fake.inject("POST", "/workflows", status=429)
    async with client(fake, retry=RetryPolicy(max_attempts=1, backoff_base=0.3)) as tl:
        with pytest.raises(RateLimitError):
            await launch(tl)
        await tl.workflows.get(execution_id)
    entry = first_refusal(fake)
    assert entry.finished is not None
    assert min(started_after(fake, entry)) - entry.finished >= 0.3


async def test_a_503_pauses_only_with_a_retry_after(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    async with client(fake, retry=RetryPolicy.no_retries()) as tl:
        fake.inject("GET", "/workflows/*", status=503)
        with pytest.raises(ServerError):
            await tl.workflows.get(execution_id)
        started = time.monotonic()
        await tl.workflows.get(execution_id)
        assert time.monotonic() - started < 0.2  # no pause without Retry-After
        fake.inject("GET", "/workflows/*", status=503, retry_after=0.3)
        with pytest.raises(ServerError):
            await tl.workflows.get(execution_id)
        await tl.workflows.get(execution_id)
    entry = next(e for e in fake.journal if e.status == 503 and "retry_after" in e.faults)
    assert entry.finished is not None
    assert min(started_after(fake, entry)) - entry.finished >= 0.3


async def test_a_pause_longer_than_the_policy_allows_raises_at_once_for_everyone(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    execution_id = fake.create_execution()
    fake.inject("POST", "/workflows", status=429, retry_after=120)
    started = time.monotonic()
    with pytest.raises(RateLimitError) as refused:
        await launch(tl)
    assert refused.value.retry_after == 120
    with pytest.raises(RateLimitError, match="was not sent") as held:
        await tl.workflows.get(execution_id)
    assert time.monotonic() - started < 1.0
    assert held.value.retry_after is not None
    assert 119 < held.value.retry_after <= 120
    assert held.value.status == 429
    assert fake.count("GET", "/workflows/*") == 0  # nothing sent into a known refusal


async def test_closing_the_client_ends_the_waits_at_once(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    fake.inject("POST", "/workflows", status=429, retry_after=30)
    tl = client(fake)
    answered = asyncio.Event()
    request = ApiRequest(
        method="POST",
        path="/workflows",
        json={"workflowDefinitionId": "kyc", "locale": "en", "parameters": {}},
        mode=RetryMode.CREATING,
    )
    tl.events.on_response(lambda event: answered.set() if event.status == 429 else None)
    # Told of the 429 as send() notes the pause and goes to sleep before its retry.
    sleeping = asyncio.ensure_future(tl.send(request))
    await answered.wait()
    waiting = asyncio.ensure_future(tl.workflows.get(execution_id))  # held by the pause
    await anyio.sleep(0.05)
    started = time.monotonic()
    await tl.aclose()
    with anyio.fail_after(1):
        for task in (sleeping, waiting):
            with pytest.raises(ClientClosedError):
                await task
    assert time.monotonic() - started < 0.5
    assert fake.count("GET", "/workflows/*") == 0


async def test_a_cancelled_waiter_is_cancelled_and_holds_nobody_up(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    fake.inject("POST", "/workflows", status=429, retry_after=0.3)
    async with client(fake, retry=RetryPolicy.no_retries()) as tl:
        with pytest.raises(RateLimitError):
            await launch(tl)
        waiting = asyncio.ensure_future(tl.workflows.get(execution_id))
        await anyio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (await tl.workflows.get(execution_id)).id == execution_id
    assert fake.count("GET", "/workflows/*") == 1


# -- RateLimit: a known limit is never reached --------------------------------------------


async def test_a_rate_limit_below_the_apis_is_never_answered_429(
    fake: FakeTransactionLink,
) -> None:
    fake.set_rate_limit("*", "/**", per_second=120, burst=10, retry_after=1)
    execution_id = fake.create_execution()
    async with client(fake, rate_limit=RateLimit(100, burst=2)) as tl:
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for n in range(100):
                tg.start_soon(launch, tl, n)
                tg.start_soon(tl.workflows.get, execution_id)
        elapsed = time.monotonic() - started
    assert fake.stats()["answers"]["POST /workflows"] == {"200": 100}
    assert fake.stats()["answers"]["GET /workflows/{id}"] == {"200": 100}
    # 200 requests at 100 a second, the first two at once: about two seconds.
    assert elapsed >= (200 - 2) / 100 - 0.05
    starts = sorted(e.started for e in fake.journal)
    for i, start in enumerate(starts):  # any second holds at most burst + rate requests,
        in_a_second = sum(1 for s in starts[i:] if s - start < 1.0)
        assert in_a_second <= 2 + 100 + 10  # give or take the loop's jitter (one loop here)


async def test_overload_from_many_tasks_with_enough_attempts_loses_nothing(
    fake: FakeTransactionLink,
) -> None:
    fake.set_rate_limit("POST", "/workflows", per_second=50, burst=5, retry_after=0.1)
    policy = RetryPolicy(max_attempts=100, backoff_base=0.05, backoff_cap=0.5)
    results: list[str | BaseException] = []

    async def offer(tl: TransactionLink, n: int) -> None:
        try:
            results.append(await launch(tl, n))
        except Exception as exc:  # counted below: none may fail
            results.append(exc)

    async with client(fake, retry=policy) as tl, anyio.create_task_group() as tg:
        for n in range(150):  # offered at 150 a second, three times the limit
            tg.start_soon(offer, tl, n)
            await anyio.sleep(1 / 150)
    assert [r for r in results if not isinstance(r, str)] == []
    assert len(set(results)) == 150
    assert len(fake.executions) == 150
    answers = fake.stats()["answers"]["POST /workflows"]
    assert answers["200"] == 150
    # After the first 429s the client paces every caller at the rate it learned, instead
    # of all of them coming back together after each pause and being refused again.
    assert answers.get("429", 0) < 150 / 3


# -- launch_many: a rate learned from 429s -------------------------------------------------


async def test_launch_many_finds_the_limit_and_launches_everything_once(
    fake: FakeTransactionLink,
) -> None:
    fake.set_rate_limit("POST", "/workflows", per_second=200, burst=20, retry_after=0.2)
    requests = (
        LaunchRequest(workflow_definition_id="kyc", locale="en", parameters={"n": n})
        for n in range(800)
    )
    policy = RetryPolicy(max_attempts=20, backoff_base=0.05, backoff_cap=0.5)
    async with client(fake, retry=policy) as tl:
        batch = tl.workflows.launch_many(requests, concurrency=40)
        assert batch.current_rate is None  # nothing paced before the first 429
        outcomes = [o async for o in batch]
        # Paced since the 429s (still searching upwards, or cruising below the limit).
        assert batch.current_rate is not None
        assert batch.current_limit == 40
    assert all(o.ok for o in outcomes)
    assert len(fake.executions) == 800
    answers = fake.stats()["answers"]["POST /workflows"]
    assert answers.get("429", 0) <= 0.1 * 800


async def test_launch_many_under_a_rate_limit_is_never_refused(
    fake: FakeTransactionLink,
) -> None:
    fake.set_rate_limit("POST", "/workflows", per_second=220, burst=10, retry_after=1)
    requests = (
        LaunchRequest(workflow_definition_id="kyc", locale="en", parameters={"n": n})
        for n in range(300)
    )
    async with client(fake, rate_limit=RateLimit(200)) as tl:
        batch = tl.workflows.launch_many(requests, concurrency=40)
        assert batch.current_rate == 200  # the RateLimit holds it from the start
        outcomes = [o async for o in batch]
    assert all(o.ok for o in outcomes)
    assert fake.stats()["answers"]["POST /workflows"] == {"200": 300}
