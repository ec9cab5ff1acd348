"""ResultStream.json_items over a broken transfer: resumed like the chunks, or a clear error."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import anyio
import pytest
from support import FAST_RETRY

from transactionlink_async import (
    ClientClosedError,
    OrganizationToken,
    ResultDownloadError,
    Timeouts,
    TransactionLink,
)
from transactionlink_async.testing import FakeTransactionLink, GeneratedJson

pytestmark = pytest.mark.anyio

pytest.importorskip("ijson")

SIZE = 1_500_000


def client(fake: FakeTransactionLink, **kwargs: Any) -> TransactionLink:
    kwargs.setdefault("retry", FAST_RETRY)
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url, **kwargs)


def large(fake: FakeTransactionLink) -> str:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=SIZE)
    return execution_id


def expected_records() -> list[Any]:
    raw = b"".join(GeneratedJson(SIZE, 0).read(0, SIZE))
    records: list[Any] = json.loads(raw, parse_float=Decimal)["records"]
    return records


async def records_of(tl: TransactionLink, execution_id: str, **kwargs: Any) -> list[Any]:
    async with tl.workflows.stream_result(execution_id, **kwargs) as stream:
        return [record async for record in stream.json_items("records.item")]


@pytest.mark.parametrize("fault", ["cut", "drop", "idle"])
async def test_a_broken_transfer_is_resumed_and_every_record_comes(fault: str) -> None:
    async with FakeTransactionLink() as fake:
        execution_id = large(fake)
        if fault == "idle":
            fake.s3.inject(stall_after=400_000)
        else:
            fake.s3.inject(cut_after=400_000)
        if fault == "drop":
            fake.s3.inject(drop=True, ranged=True)  # the first resume finds no answer either
        async with client(fake, timeouts=Timeouts(read=0.3)) as tl:
            records = await records_of(tl, execution_id)
        assert records == expected_records()
        ranges = [r.range for r in fake.s3.requests("GET")]
        assert ranges[0] is None
        # Resumed (not started over) from the bytes that reached the parser: no further
        # than where the storage stopped, and earlier when aiohttp dropped what it still
        # held on seeing the break (it raises before handing buffered bytes over).
        last = ranges[-1]
        assert last is not None
        assert last.startswith("bytes=")
        assert last.endswith("-")
        assert 0 < int(last[len("bytes=") : -1]) <= 400_000


async def test_a_transfer_that_keeps_breaking_ends_in_a_transaction_link_error(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake)
    fake.s3.inject(cut_after=100_000, times=None)
    async with client(fake) as tl:
        with pytest.raises(ResultDownloadError, match="after 3 requests"):
            await records_of(tl, execution_id, max_attempts=3)
    assert len(fake.s3.requests("GET")) == 3


async def test_cancelling_mid_parse_lets_go_of_the_connection(fake: FakeTransactionLink) -> None:
    execution_id = large(fake)
    fake.s3.inject(drip=0.01, drip_bytes=16 * 1024)
    seen: list[Any] = []
    async with client(fake) as tl:
        with anyio.move_on_after(0.3) as scope:
            async with tl.workflows.stream_result(execution_id) as stream:
                async for record in stream.json_items("records.item"):
                    seen.append(record)
        assert scope.cancelled_caught
        with anyio.fail_after(2):
            while fake.s3.in_flight():  # noqa: ASYNC110 - the fake offers no event
                await anyio.sleep(0.01)
    assert seen
    assert fake.s3.requests("GET")[0].hung_up


async def test_closing_the_client_mid_parse_raises_client_closed(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake)
    fake.s3.inject(stall_after=400_000)
    tl = client(fake)
    seen: list[Any] = []

    async def parse() -> None:
        async with tl.workflows.stream_result(execution_id) as stream:
            async for record in stream.json_items("records.item"):
                seen.append(record)

    def stalled() -> bool:
        return bool(seen) and any(r.bytes_sent >= 400_000 for r in fake.s3.journal)

    task = asyncio.ensure_future(parse())
    with anyio.fail_after(5):
        while not stalled():  # noqa: ASYNC110
            await anyio.sleep(0.01)
    with anyio.fail_after(1):
        await tl.aclose()
        await asyncio.wait({task})
    assert isinstance(task.exception(), ClientClosedError)
