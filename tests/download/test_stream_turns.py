"""A long json_items loop gives the other tasks of the loop their turn, even when no read waits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

SIZE = 12 * 1024 * 1024


async def most_work_between_turns(work: list[int], consume: Callable[[], Awaitable[None]]) -> int:
    """Run `consume()` beside a task that wakes whenever the loop lets it: the most units
    of `work` (bytes or items) done between two of its turns."""
    most = 0
    done = anyio.Event()

    async def watcher() -> None:
        nonlocal most
        seen = 0
        while not done.is_set():
            most = max(most, work[0] - seen)
            seen = work[0]
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watcher)
        await consume()
        done.set()
    return most


async def test_json_items_of_a_linked_result_let_others_run(fake: FakeTransactionLink) -> None:
    pytest.importorskip("ijson")
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=SIZE)
    items = [0]
    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:

        async def consume() -> None:
            async with tl.workflows.stream_result(execution_id) as stream:
                await anyio.sleep(0.3)  # the link outruns the parser: bytes pile up unread
                async for _ in stream.json_items("records.item"):
                    items[0] += 1

        most = await most_work_between_turns(items, consume)
    # aiohttp holds up to a few MiB of a fast link unread: parsing all of it without a
    # turn would freeze every other task for as long (tens of thousands of items here).
    assert items[0] > 50_000
    assert most < items[0] / 20
