"""launch_many with a journal: resumes, in-doubt keys, keys checked before sending."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from transactionlink_async import (
    BadRequestError,
    LaunchInDoubtError,
    LaunchOutcome,
    LaunchRequest,
    NotFoundError,
    TransactionLink,
    TransportError,
)
from transactionlink_async.journal import Journal, KeyState, RedisJournal, SqliteJournal
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


def keyed(n: int, **changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "workflow_definition_id": "def",
        "locale": "en",
        "parameters": {"n": n},
        "key": f"customer-{n}",
    }
    fields.update(changes)
    return LaunchRequest(**fields)


def posts(fake: FakeTransactionLink) -> int:
    return fake.count("POST", "/workflows")


async def run(
    tl: TransactionLink, journal: Journal, requests: Any, concurrency: int = 5
) -> dict[int, LaunchOutcome]:
    with anyio.fail_after(30):
        async with tl.workflows.launch_many(
            requests, concurrency=concurrency, journal=journal
        ) as batch:
            return {outcome.index: outcome async for outcome in batch}


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    async with SqliteJournal(tmp_path / "run.db") as opened:
        yield opened


async def test_a_rerun_resumes_every_key_and_sends_nothing(
    tl: TransactionLink, fake: FakeTransactionLink, tmp_path: Path
) -> None:
    requests = [keyed(n) for n in range(30)]
    async with SqliteJournal(tmp_path / "run.db") as journal:
        first = await run(tl, journal, requests)
    assert posts(fake) == 30
    assert all(o.ok and not o.resumed for o in first.values())
    assert len({o.execution.id for o in first.values() if o.execution}) == 30
    # The key names the request in the journal only; the API never sees it.
    assert all("key" not in entry.json() for entry in fake.requests("POST", "/workflows"))

    async with SqliteJournal(tmp_path / "run.db") as journal:
        again = await run(tl, journal, requests)
    assert posts(fake) == 30, "a rerun sent launches again"
    assert sorted(again) == list(range(30))
    for index, outcome in again.items():
        assert outcome.resumed
        assert outcome.ok
        assert outcome.request is requests[index]
        assert outcome.execution is not None
        assert outcome.execution.id == first[index].execution.id  # type: ignore[union-attr]


async def test_a_request_without_a_usable_key_is_refused_before_sending(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    requests = [
        keyed(0, key=None),
        keyed(1, key=""),
        keyed(2, key="a\nb"),
        keyed(3, key=7),
        keyed(4),
        keyed(5, key="customer-4"),  # the same key again
        "not a request",
    ]
    outcomes = await run(tl, journal, requests)
    assert isinstance(outcomes[0].error, ValueError)
    assert "needs a key" in str(outcomes[0].error)
    assert isinstance(outcomes[1].error, ValueError)
    assert isinstance(outcomes[2].error, ValueError)
    assert isinstance(outcomes[3].error, TypeError)
    assert outcomes[4].ok
    assert isinstance(outcomes[5].error, ValueError)
    assert "more than once" in str(outcomes[5].error)
    assert isinstance(outcomes[6].error, TypeError)
    assert posts(fake) == 1
    launched = [e async for e in journal.entries()]
    assert [(e.key, e.state) for e in launched] == [("customer-4", KeyState.LAUNCHED)]


async def test_a_key_given_twice_far_apart_in_a_long_input_is_caught(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    def requests() -> Iterator[LaunchRequest]:
        yield from (keyed(n) for n in range(1000))
        yield keyed(1000, key="customer-3")

    outcomes = await run(tl, journal, requests(), concurrency=50)
    assert isinstance(outcomes[1000].error, ValueError)
    assert posts(fake) == 1000
    # A rerun of the same input is not a duplicate: the run that saw the keys has ended.
    again = await run(tl, journal, [keyed(3)])
    assert again[0].resumed


async def test_a_launch_that_may_have_arrived_is_in_doubt_and_never_resent_alone(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    fake.inject("POST", "/workflows", drop="after_body")
    outcomes = await run(tl, journal, [keyed(0)])
    error = outcomes[0].error
    assert isinstance(error, LaunchInDoubtError)
    assert error.key == "customer-0"
    assert isinstance(error.__cause__, TransportError)
    assert "resolve" in str(error)
    assert (await journal.get("customer-0")).state is KeyState.IN_DOUBT  # type: ignore[union-attr]

    again = await run(tl, journal, [keyed(0)])
    assert isinstance(again[0].error, LaunchInDoubtError)
    assert posts(fake) == 1

    # The user found out it was not created: the next run sends it.
    await journal.resolve("customer-0", None)
    sent = await run(tl, journal, [keyed(0)])
    assert sent[0].ok
    assert not sent[0].resumed
    assert posts(fake) == 2


async def test_a_key_resolved_as_launched_is_resumed_with_its_execution(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    fake.inject("POST", "/workflows", status=503, times=None)
    outcomes = await run(tl, journal, [keyed(0), keyed(1)])
    assert all(isinstance(o.error, LaunchInDoubtError) for o in outcomes.values())
    fake.clear_faults()
    existing = fake.create_execution()
    await journal.resolve("customer-0", existing)
    await journal.resolve("customer-1", "no-such-execution")
    before = posts(fake)
    again = await run(tl, journal, [keyed(0), keyed(1)])
    assert again[0].resumed
    assert again[0].execution is not None
    assert again[0].execution.id == existing
    # A wrong id says so instead of inventing an execution.
    assert again[1].resumed
    assert isinstance(again[1].error, NotFoundError)
    assert posts(fake) == before
    # Fetched once, then kept.
    gets = fake.count("GET", f"/workflows/{existing}")
    await run(tl, journal, [keyed(0)])
    assert fake.count("GET", f"/workflows/{existing}") == gets


async def test_a_refused_launch_is_released_and_sent_by_the_next_run(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    fake.inject("POST", "/workflows", status=400, body={"errors": [{"message": "bad"}]})
    outcomes = await run(tl, journal, [keyed(0)])
    assert isinstance(outcomes[0].error, BadRequestError)
    assert (await journal.get("customer-0")).state is KeyState.RELEASED  # type: ignore[union-attr]
    again = await run(tl, journal, [keyed(0)])
    assert again[0].ok
    assert posts(fake) == 2


async def test_an_async_input_is_read_in_chunks_and_its_error_comes_last(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    async def requests() -> AsyncIterator[LaunchRequest]:
        for n in range(40):
            if n % 7 == 0:
                await asyncio.sleep(0.001)
            yield keyed(n)
        raise RuntimeError("the source broke")

    seen: list[LaunchOutcome] = []

    async def consume() -> None:
        async for outcome in tl.workflows.launch_many(requests(), journal=journal):
            seen.append(outcome)

    with anyio.fail_after(30), pytest.raises(RuntimeError, match="broke"):
        await consume()
    assert sorted(o.index for o in seen) == list(range(40))
    assert posts(fake) == 40


async def test_two_batches_on_one_journal_launch_each_key_once(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    fake.inject("POST", "/workflows", delay=0.02, times=None)
    requests = [keyed(n) for n in range(40)]
    first, second = await asyncio.gather(
        run(tl, journal, requests, concurrency=8), run(tl, journal, requests, concurrency=8)
    )
    assert posts(fake) == 40
    for index in range(40):
        one, other = first[index], second[index]
        assert one.ok
        assert other.ok
        assert one.resumed != other.resumed, "exactly one of the two batches sent it"
        assert one.execution.id == other.execution.id  # type: ignore[union-attr]


async def test_leaving_a_journaled_batch_early_leaves_no_key_claimed(
    tl: TransactionLink, fake: FakeTransactionLink, journal: SqliteJournal
) -> None:
    fake.inject("POST", "/workflows", delay=0.05, times=None)
    with anyio.fail_after(30):
        async with tl.workflows.launch_many(
            [keyed(n) for n in range(100)], concurrency=10, journal=journal
        ) as batch:
            async for _ in batch:
                break
    states = {e.key: e.state async for e in journal.entries()}
    assert KeyState.CLAIMED not in states.values()
    assert sum(state is KeyState.LAUNCHED for state in states.values()) == posts(fake)

    # Cancelled mid-flight: what was sent is in doubt, nothing stays claimed.
    with anyio.move_on_after(0.02):
        async with tl.workflows.launch_many(
            [keyed(n) for n in range(100, 200)], concurrency=10, journal=journal
        ) as batch:
            async for _ in batch:
                pass
    states = {e.key: e.state async for e in journal.entries()}
    assert KeyState.CLAIMED not in states.values()
    assert sum(state is KeyState.IN_DOUBT for state in states.values()) <= 10


async def test_a_batch_without_a_journal_resumes_nothing(
    tl: TransactionLink, fake: FakeTransactionLink
) -> None:
    async for outcome in tl.workflows.launch_many([keyed(0)]):
        assert outcome.ok
        assert outcome.resumed is False
    with pytest.raises(TypeError, match="Journal"):
        tl.workflows.launch_many([keyed(0)], journal="run.db")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_key_that_is_not_unicode_text_is_refused_alone(
    tl: TransactionLink,
    fake: FakeTransactionLink,
    tmp_path: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # A lone surrogate cannot be stored as UTF-8: refused up front, it must not fail
    # the lookups and claims of the keys that share its round trip.
    opened: Journal
    if kind == "redis":
        opened = RedisJournal(request.getfixturevalue("redis_url"), "surrogates")
    else:
        opened = SqliteJournal(tmp_path / "run.db")
    async with opened as journal:
        requests = [keyed(0), keyed(1, key="bad-\ud800"), keyed(2)]
        outcomes = await run(tl, journal, requests)
        assert isinstance(outcomes[1].error, ValueError)
        assert "surrogate" in str(outcomes[1].error)
        assert outcomes[0].ok
        assert outcomes[2].ok
        assert posts(fake) == 2
