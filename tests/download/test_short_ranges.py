"""Resumes answered with short-but-legal 206s: accepted only once the bytes add up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl
from support import fast_client

from transactionlink_async import ResultDownloadError, TransactionLink
from transactionlink_async.testing import FakeS3, FakeTransactionLink, GeneratedJson

pytestmark = pytest.mark.anyio

SIZE = 300_000
#: The first answer breaks off here; every resume then gets at most SHORT bytes.
CUT = 100_000
SHORT = 50_000
#: One whole answer cut at CUT, then the rest in SHORT pieces.
REQUESTS = 1 + (SIZE - CUT) // SHORT


def short_pieces(fake: FakeTransactionLink) -> str:
    """An execution whose result comes as a cut answer, then short 206s only.

    The ETag is a multipart one (no MD5 to check): only the size can tell the result is
    complete.
    """
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=SIZE, multipart_etag=True)
    fake.s3.inject(cut_after=CUT)
    fake.s3.inject(short_range=SHORT, times=None)
    return execution_id


def expected() -> bytes:
    return b"".join(GeneratedJson(SIZE).read(0, SIZE))


def answers(fake: FakeTransactionLink) -> list[tuple[int | None, str | None, int]]:
    return [(r.status, r.range, r.bytes_sent) for r in fake.s3.requests("GET")]


def pieces() -> list[tuple[int | None, str | None, int]]:
    first = [(200, None, CUT)]
    return first + [(206, f"bytes={start}-", SHORT) for start in range(CUT, SIZE, SHORT)]


async def test_download_result_asks_until_the_bytes_add_up(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = short_pieces(fake)
    destination = tmp_path / "r.json"
    async with fast_client(fake) as tl:
        result = await tl.workflows.download_result(
            execution_id, destination, max_attempts=REQUESTS
        )
    assert answers(fake) == pieces()
    assert result.size == SIZE
    assert (result.attempts, result.resumes) == (REQUESTS, REQUESTS - 1)
    assert not result.md5_verified
    assert destination.read_bytes() == expected()


async def read_stream(tl: TransactionLink, execution_id: str, max_attempts: int) -> bytes:
    async with tl.workflows.stream_result(execution_id, max_attempts=max_attempts) as stream:
        return b"".join([chunk async for chunk in stream])


async def test_stream_result_asks_until_the_bytes_add_up(fake: FakeTransactionLink) -> None:
    execution_id = short_pieces(fake)
    async with fast_client(fake) as tl:
        body = await read_stream(tl, execution_id, REQUESTS)
    assert body == expected()
    assert answers(fake) == pieces()


async def test_get_result_asks_until_the_bytes_add_up(fake: FakeTransactionLink) -> None:
    execution_id = short_pieces(fake)
    async with fast_client(fake) as tl:
        # get_result allows the default 5 requests: exactly what the pieces take.
        records: dict[str, Any] = await tl.workflows.get_result(execution_id)
    assert len(records["records"]) > 0
    assert answers(fake) == pieces()


@pytest.mark.parametrize("how", ["download", "stream"])
async def test_pieces_that_never_add_up_are_refused(
    fake: FakeTransactionLink, tmp_path: Path, how: str
) -> None:
    execution_id = short_pieces(fake)
    too_few = REQUESTS - 1
    async with fast_client(fake) as tl:
        read = (
            tl.workflows.download_result(execution_id, tmp_path / "r.json", max_attempts=too_few)
            if how == "download"
            else read_stream(tl, execution_id, too_few)
        )
        with pytest.raises(ResultDownloadError, match=f"ended at byte {SIZE - SHORT} of {SIZE}"):
            await read
    assert answers(fake) == pieces()[:too_few]
    assert names(tmp_path) == []


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- the fault itself --------------------------------------------------------------------


@pytest.fixture
async def s3() -> AsyncIterator[FakeS3]:
    async with FakeS3() as server:
        yield server


async def test_the_fake_answers_a_range_with_a_short_legal_206(s3: FakeS3) -> None:
    data = bytes(range(256)) * 40
    s3.put("k", data)
    s3.inject(short_range=100, times=2)
    url = yarl.URL(s3.presign("k"), encoded=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as whole:  # not ranged: the rule does not apply
            assert (whole.status, await whole.read()) == (200, data)
        async with http.get(url, headers={"Range": "bytes=1000-"}) as short:
            assert short.status == 206
            assert short.headers["Content-Range"] == f"bytes 1000-1099/{len(data)}"
            assert await short.read() == data[1000:1100]
        async with http.get(url, headers={"Range": "bytes=10200-"}) as tail:
            # Less left than the rule allows: the whole rest.
            assert tail.headers["Content-Range"] == f"bytes 10200-10239/{len(data)}"
            assert await tail.read() == data[10200:]
        async with http.get(url, headers={"Range": "bytes=0-"}) as used_up:
            assert used_up.headers["Content-Range"] == f"bytes 0-10239/{len(data)}"
    with pytest.raises(ValueError, match="short_range"):
        s3.inject(short_range=0)
