"""Long stretches of work that never wait still let the other tasks of the loop run."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async._download.pace import Pacer
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


class Ticker:
    """Counts the turns another task gets while the code under test runs."""

    def __init__(self) -> None:
        self.ticks = 0
        self._running = True

    async def run(self) -> None:
        while self._running:
            await asyncio.sleep(0)
            self.ticks += 1

    def stop(self) -> None:
        self._running = False


async def test_a_busy_loop_that_paces_itself_lets_others_run() -> None:
    ticker = Ticker()
    task = asyncio.ensure_future(ticker.run())
    pacer = Pacer(interval=0.002)
    end = time.monotonic() + 5
    while ticker.ticks < 5 and time.monotonic() < end:
        await pacer.pace()
    ticker.stop()
    await task
    assert ticker.ticks >= 5


async def test_a_pacer_does_not_suspend_before_its_interval() -> None:
    ticker = Ticker()
    task = asyncio.ensure_future(ticker.run())
    pacer = Pacer(interval=60.0)
    for _ in range(1000):
        await pacer.pace()
    ticker.stop()
    await task
    assert ticker.ticks <= 1


async def test_json_items_lets_other_tasks_run(fake: FakeTransactionLink) -> None:
    # An inline result: its chunks never wait for the network, and the loop below never
    # suspends; without pacing, the other task would not run until the end.
    records = [{"n": n, "name": "x" * 20} for n in range(60_000)]
    execution_id = fake.create_execution({"records": records})
    ticker = Ticker()
    tl = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)
    async with tl, tl.workflows.stream_result(execution_id) as stream:
        assert not stream.redirected
        task = asyncio.ensure_future(ticker.run())
        count = 0
        async for _ in stream.json_items("records.item"):
            count += 1
        ticker.stop()
        await task
    assert count == len(records)
    assert ticker.ticks >= 2
    assert json.dumps(records)  # the result was as large as meant
