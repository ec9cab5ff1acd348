"""launch_many over real sockets: bounded and adaptive concurrency, outcomes, stopping early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest

from transactionlink_async import (
    BadRequestError,
    LaunchBatch,
    LaunchOutcome,
    LaunchRequest,
    OrganizationToken,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransactionLink,
    TransportError,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


def request(n: int = 0, **changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "workflow_definition_id": "def",
        "locale": "en",
        "parameters": {"n": n},
    }
    fields.update(changes)
    return LaunchRequest(**fields)


def posts(fake: FakeTransactionLink) -> int:
    return fake.count("POST", "/workflows")


async def no_more_launches(fake: FakeTransactionLink) -> bool:
    """True when no launch arrives within a bound (one would arrive within milliseconds)."""
    return await fake.next_request("POST", "/workflows", timeout=0.5) is None


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - the journal's counts have no event
            await anyio.sleep(0.005)


def assert_no_tasks_left() -> None:
    current = asyncio.current_task()
    ours = [
        t
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and "transactionlink_async/_" in repr(t.get_coro())
    ]
    assert not ours


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "kwargs", "error"),
    [
        ([], {"concurrency": 0}, ValueError),
        ([], {"concurrency": 2.0}, TypeError),
        ([], {"concurrency": True}, TypeError),
        (5, {}, TypeError),
        ("abc", {}, TypeError),
    ],
)
async def test_bad_batch_arguments_raise_at_once(
    fake: FakeTransactionLink,
    tl: TransactionLink,
    requests: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        tl.workflows.launch_many(requests, **kwargs)
    assert fake.journal == []


async def test_bad_requests_become_outcomes_and_send_nothing(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    items: list[Any] = [
        request(0),
        request(1, locale=""),
        {"workflow_definition_id": "def"},
        request(3, parameters={"x": object()}),
        request(4),
    ]
    outcomes = {o.index: o async for o in tl.workflows.launch_many(items)}
    assert sorted(outcomes) == [0, 1, 2, 3, 4]
    assert outcomes[0].ok
    assert outcomes[4].ok
    assert isinstance(outcomes[1].error, ValueError)
    assert isinstance(outcomes[2].error, TypeError)
    assert isinstance(outcomes[3].error, TypeError)
    assert outcomes[2].request is items[2]
    assert posts(fake) == 2


# -- the batch ---------------------------------------------------------------------------------


async def test_a_thousand_launches_twenty_at_a_time(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("POST", "/workflows", status=400, times=7)
    fake.inject("POST", "/workflows", delay=0.01, times=None)
    items = [request(n, locale="" if n % 100 == 99 else "en") for n in range(1000)]
    outcomes: list[LaunchOutcome] = []
    with anyio.fail_after(30):
        async for outcome in tl.workflows.launch_many(items, concurrency=20):
            outcomes.append(outcome)
    assert sorted(o.index for o in outcomes) == list(range(1000))
    assert all(o.request is items[o.index] for o in outcomes)
    refused = [o for o in outcomes if isinstance(o.error, ValueError)]
    rejected = [o for o in outcomes if isinstance(o.error, BadRequestError)]
    launched = [o for o in outcomes if o.ok]
    assert len(refused) == 10
    assert len(rejected) == 7
    assert len(launched) == 983
    # Never above the limit; and the overlap was real (a loaded machine may not fill all 20).
    assert 10 <= fake.max_in_flight("POST", "/workflows") <= 20
    # Sent exactly once each: one POST per valid request, one execution per success.
    assert posts(fake) == 990
    assert len(fake.executions) == 983
    assert {o.execution.id for o in launched if o.execution} == set(fake.executions)


async def test_a_429_burst_paces_the_batch_without_cutting_its_concurrency(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("POST", "/workflows", delay=0.01, times=None)
    batch = tl.workflows.launch_many((request(n) for n in range(600)), concurrency=20)
    rates: list[float | None] = []
    launched = 0
    with anyio.fail_after(30):
        async for outcome in batch:
            launched += outcome.ok
            rates.append(batch.current_rate)
            assert batch.current_limit == 20
            assert batch.in_flight <= 20
            if len(rates) == 200:
                fake.clear_faults()
                fake.inject("POST", "/workflows", status=429, retry_after="0.2", times=30)
                fake.inject("POST", "/workflows", delay=0.01, times=None)
            assert outcome.ok or isinstance(outcome.error, RateLimitError)
    # Unpaced until the 429s, paced after them: by rate, with all 20 slots still in use.
    assert rates[:200] == [None] * 200
    assert rates[-1] is not None
    assert rates[-1] > 0
    assert fake.max_in_flight("POST", "/workflows") <= 20
    entries = fake.requests("POST", "/workflows")
    first_refused = next(n for n, e in enumerate(entries) if e.status == 429)
    assert any(e.status == 200 for e in entries[first_refused:])
    answered_ok = sum(1 for e in entries if e.status == 200)
    assert len(fake.executions) == answered_ok == launched


async def test_a_429_pauses_new_launches_for_its_retry_after(fake: FakeTransactionLink) -> None:
    fake.inject("POST", "/workflows", delay=0.005, times=3)
    fake.inject("POST", "/workflows", status=429, retry_after="0.3")
    fake.inject("POST", "/workflows", delay=0.005, times=None)
    # No retries: the refused request frees its slot at once, only the pause holds back.
    async with TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        retry=RetryPolicy.no_retries(),
    ) as tl:
        # One at a time, so that every launch after the 429 was sent after the client saw it.
        batch = tl.workflows.launch_many(map(request, range(10)), concurrency=1)
        outcomes = [o async for o in batch]
    refused = [o for o in outcomes if o.error is not None]
    assert len(refused) == 1
    assert isinstance(refused[0].error, RateLimitError)
    assert refused[0].error.retry_after == 0.3
    entries = fake.requests("POST", "/workflows")
    rate_limited = next(e for e in entries if e.status == 429)
    assert rate_limited.finished is not None
    later = [e.started for e in entries if e.started > rate_limited.started]
    assert min(later) - rate_limited.finished >= 0.25


async def test_the_input_is_read_lazily(fake: FakeTransactionLink, tl: TransactionLink) -> None:
    taken = 0

    def endless() -> Iterator[LaunchRequest]:
        nonlocal taken
        while True:
            taken += 1
            # Bounded, so a launch_many that reads ahead fails this test instead of
            # filling the machine's memory.
            if taken > 1000:
                raise AssertionError("launch_many read far ahead of the outcomes asked for")
            yield request(taken)

    seen = 0
    async for _ in tl.workflows.launch_many(endless(), concurrency=5):
        seen += 1
        if seen == 50:
            break
    assert taken <= 50 + 5
    assert posts(fake) <= 50 + 5


async def test_an_async_input_even_a_slow_one(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    async def trickle() -> AsyncIterator[LaunchRequest]:
        for n in range(30):
            if n % 10 == 0:
                await anyio.sleep(0.02)
            yield request(n, locale="" if n == 7 else "en")

    outcomes = [o async for o in tl.workflows.launch_many(trickle(), concurrency=4)]
    assert sorted(o.index for o in outcomes) == list(range(30))
    assert sum(o.ok for o in outcomes) == 29
    assert fake.max_in_flight("POST", "/workflows") <= 4


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_broken_input_ends_the_loop_after_the_launched_ones(
    fake: FakeTransactionLink, tl: TransactionLink, kind: str
) -> None:
    def broken() -> Iterator[LaunchRequest]:
        yield request(0)
        yield request(1)
        raise LookupError("the input broke")

    async def abroken() -> AsyncIterator[LaunchRequest]:
        for item in broken():
            yield item

    source: Any = broken() if kind == "sync" else abroken()
    outcomes: list[LaunchOutcome] = []

    async def consume() -> None:
        async for outcome in tl.workflows.launch_many(source):
            outcomes.append(outcome)

    with pytest.raises(LookupError, match="the input broke"):
        await consume()
    assert sorted(o.index for o in outcomes) == [0, 1]
    assert all(o.ok for o in outcomes)


async def test_failures_are_outcomes_and_never_resent(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("POST", "/workflows", status=500, times=3)
    fake.inject("POST", "/workflows", drop="after_body", times=2)
    outcomes = [o async for o in tl.workflows.launch_many([request(n) for n in range(10)])]
    errors = [type(o.error) for o in outcomes if o.error is not None]
    assert sorted(e.__name__ for e in errors) == ["ServerError"] * 3 + ["TransportError"] * 2
    assert all(issubclass(e, (ServerError, TransportError)) for e in errors)
    assert posts(fake) == 10


# -- stopping early ----------------------------------------------------------------------------


async def test_breaking_out_stops_launching_at_once(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("POST", "/workflows", delay=0.05, times=None)
    batch = tl.workflows.launch_many((request(n) for n in range(1000)), concurrency=8)
    async for _ in batch:
        break
    # Those in flight finish. (The fake's own count can be 0 while a launch started just
    # before the break is still on its way to it: wait for the batch's answers.)
    await until(lambda: batch.in_flight == 0)
    sent = posts(fake)
    # The first outcome's call started at most 8, plus one per slot freed before it returned.
    assert sent <= 16
    assert await no_more_launches(fake)
    assert posts(fake) == sent
    assert_no_tasks_left()


async def test_async_with_waits_for_the_launches_in_flight(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("POST", "/workflows", delay=0.1, times=None)
    async with tl.workflows.launch_many((request(n) for n in range(1000)), concurrency=8) as batch:
        async for _ in batch:
            break
    assert batch.in_flight == 0
    assert fake.in_flight("POST", "/workflows") == 0
    sent = posts(fake)
    assert sent == batch.launched <= 16
    assert await no_more_launches(fake)
    assert posts(fake) == sent
    assert_no_tasks_left()


async def test_cancelling_the_loop_cancels_the_launches_in_flight(
    fake: FakeTransactionLink, tl: TransactionLink
) -> None:
    fake.inject("POST", "/workflows", delay=30, times=None)
    batch: LaunchBatch | None = None

    async def consume() -> None:
        nonlocal batch
        async with tl.workflows.launch_many(
            (request(n) for n in range(1000)), concurrency=8
        ) as batch:
            async for _ in batch:
                pass

    task = asyncio.ensure_future(consume())
    await until(lambda: fake.in_flight("POST", "/workflows") == 8)
    assert await no_more_launches(fake)  # 8 at most, the concurrency
    started = anyio.current_time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert anyio.current_time() - started < 0.1
    assert batch is not None
    assert batch.in_flight == 0
    assert_no_tasks_left()
    assert await no_more_launches(fake)
    assert posts(fake) == 8
    await until(lambda: fake.in_flight("POST", "/workflows") == 0)  # the server saw them go


async def test_launch_many_of_nothing(tl: TransactionLink) -> None:
    assert [o async for o in tl.workflows.launch_many([])] == []
