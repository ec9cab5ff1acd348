"""launch_many on a closed client, or one closed mid-batch: the loop raises, the input rests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from transactionlink_async import (
    ClientClosedError,
    LaunchOutcome,
    LaunchRequest,
    OrganizationToken,
    TransactionLink,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

#: With the flaw, a closed client turns every input item into an outcome: stop there.
ENOUGH = 200


def client(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)


class Endless:
    """An endless input that counts what was read from it."""

    def __init__(self) -> None:
        self.read = 0

    def __iter__(self) -> Iterator[LaunchRequest]:
        for number in itertools.count():
            self.read += 1
            yield LaunchRequest(workflow_definition_id=f"def-{number}", locale="en")

    async def slowly(self, gate: asyncio.Event) -> AsyncIterator[LaunchRequest]:
        """The same items, each waiting until `gate` opens (for the first three, no wait)."""
        for request in self:
            if self.read > 3:
                await gate.wait()
            yield request


async def consume(batch: AsyncIterator[LaunchOutcome], seen: list[LaunchOutcome]) -> None:
    async for outcome in batch:
        seen.append(outcome)
        if len(seen) >= ENOUGH:
            return


async def test_a_closed_client_reads_nothing_and_raises(fake: FakeTransactionLink) -> None:
    tl = client(fake)
    await tl.aclose()
    endless = Endless()
    seen: list[LaunchOutcome] = []
    with anyio.fail_after(5), pytest.raises(ClientClosedError, match="closed"):
        await consume(tl.workflows.launch_many(endless), seen)
    assert seen == []
    assert endless.read == 0
    assert fake.journal == []


async def test_closed_mid_batch_the_loop_raises_and_reading_stops(
    fake: FakeTransactionLink,
) -> None:
    fake.inject("POST", "/workflows", delay=30, times=None)
    tl = client(fake)
    endless = Endless()
    seen: list[LaunchOutcome] = []

    async def close_once_in_flight() -> None:
        while fake.in_flight("POST", "/workflows") < 5:  # noqa: ASYNC110 - no event to wait on
            await anyio.sleep(0.01)
        await tl.aclose()

    closer = asyncio.ensure_future(close_once_in_flight())
    with anyio.fail_after(5), pytest.raises(ClientClosedError, match="launches nothing more"):
        await consume(tl.workflows.launch_many(endless, concurrency=5), seen)
    await closer
    read_at_close = endless.read
    # The launches in flight are told (each may have been carried out), then the loop ends.
    assert len(seen) == 5
    assert all(isinstance(o.error, ClientClosedError) for o in seen)
    assert read_at_close <= 6


async def test_closed_while_the_loop_waits_for_a_slow_input(fake: FakeTransactionLink) -> None:
    tl = client(fake)
    endless = Endless()
    gate = asyncio.Event()  # never opened: the input stalls after three items
    seen: list[LaunchOutcome] = []

    async def close_when_stalled() -> None:
        while len(seen) < 3:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        await tl.aclose()

    closer = asyncio.ensure_future(close_when_stalled())
    with anyio.fail_after(5), pytest.raises(ClientClosedError, match="launches nothing more"):
        await consume(tl.workflows.launch_many(endless.slowly(gate)), seen)
    await closer
    assert [o.ok for o in seen] == [True, True, True]
