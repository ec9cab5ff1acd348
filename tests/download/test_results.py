"""Results over real sockets: inline, and behind pre-signed links served by the fake S3."""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import logging
import random
import subprocess
import sys
import threading
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from support import FAST_RETRY

from transactionlink_async import (
    ApiKey,
    ClientClosedError,
    DownloadedResult,
    InvalidResponseError,
    OrganizationToken,
    ResultDownloadError,
    ResultTooLargeError,
    Timeouts,
    TransactionLink,
    _transport,
)
from transactionlink_async._download.atomic import AtomicFile
from transactionlink_async.testing import (
    FakeTransactionLink,
    GeneratedJson,
    S3Object,
    S3Request,
)

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def client(fake: FakeTransactionLink, **kwargs: Any) -> TransactionLink:
    kwargs.setdefault("retry", FAST_RETRY)
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url, **kwargs)


def large(fake: FakeTransactionLink, size: int, *, seed: int = 0, **kwargs: Any) -> str:
    """A completed execution whose result is a generated document of `size` bytes in S3."""
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=size, seed=seed, **kwargs)
    return execution_id


def stored(fake: FakeTransactionLink, execution_id: str) -> S3Object:
    return fake.s3.get(f"results/{execution_id}/o'brien ~result.json")


def expected_bytes(size: int, seed: int = 0) -> bytes:
    doc = GeneratedJson(size, seed)
    return b"".join(doc.read(0, size))


def gets(fake: FakeTransactionLink) -> list[S3Request]:
    return fake.s3.requests("GET")


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


class Progress:
    """Records on_progress calls and checks they only rise, except for honest rollbacks."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    @property
    def rollbacks(self) -> int:
        return sum(1 for a, b in zip(self.calls, self.calls[1:], strict=False) if b[0] < a[0])

    def check(self, size: int, *, rollbacks: int = 0) -> None:
        assert self.calls[-1] == (size, size)
        assert self.rollbacks == rollbacks
        for a, b in zip(self.calls, self.calls[1:], strict=False):
            assert b[0] >= a[0] or b[0] == 0


# -- get_result ------------------------------------------------------------------------------


async def test_get_result_inline(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution({"decision": "APPROVED", "score": 1.5})
    async with client(fake) as tl:
        assert await tl.workflows.get_result(execution_id) == {
            "decision": "APPROVED",
            "score": 1.5,
        }
    assert gets(fake) == []


async def test_get_result_follows_the_redirect_byte_for_byte(fake: FakeTransactionLink) -> None:
    execution_id = large(fake, 200_000, seed=4)
    async with TransactionLink(
        ApiKey(fake.api_key, fake.api_secret), base_url=fake.base_url, retry=FAST_RETRY
    ) as tl:
        result = await tl.workflows.get_result(execution_id)
    assert result == json.loads(expected_bytes(200_000, 4))
    (request,) = gets(fake)
    # Sent exactly as signed: the %27, %2F and %20 of the key, the %2F of the query.
    assert request.path == stored(fake, execution_id).raw_path
    assert "%27" in request.path
    assert "%2F" in request.query
    assert request.status == 200
    # No API credentials: S3 would answer 400 to a second auth mechanism.
    assert "Authorization" not in request.headers
    assert request.headers["Accept-Encoding"] == "identity"


async def test_get_result_of_a_big_inline_set_result(fake: FakeTransactionLink) -> None:
    async with FakeTransactionLink(inline_result_limit=1000) as small_limit:
        big = {"rows": [{"n": n, "text": "x" * 20} for n in range(200)]}
        execution_id = small_limit.create_execution(big)
        async with client(small_limit) as tl:
            assert await tl.workflows.get_result(execution_id) == big
        assert len(gets(small_limit)) == 1


async def test_get_result_too_large_is_refused_before_reading_the_body(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake, 5_000_000)
    # A slow body: reading it would take seconds, refusing it takes none.
    fake.s3.inject(drip=0.05, drip_bytes=16 * 1024)
    async with client(fake) as tl:
        started = time.monotonic()
        with pytest.raises(ResultTooLargeError) as caught:
            await tl.workflows.get_result(execution_id, max_bytes=MiB)
        assert time.monotonic() - started < 1.0
    assert caught.value.size == 5_000_000
    assert caught.value.limit == MiB
    assert "stream_result" in str(caught.value)
    assert "download_result" in str(caught.value)
    await wait_until_idle(fake)
    assert gets(fake)[0].bytes_sent < 100_000


async def test_get_result_without_content_length_counts_and_stops(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake, 30_000_000)
    fake.s3.inject(chunked=True)
    async with client(fake) as tl:
        with pytest.raises(ResultTooLargeError) as caught:
            await tl.workflows.get_result(execution_id, max_bytes=MiB)
    assert caught.value.size is None
    await wait_until_idle(fake)
    assert gets(fake)[0].bytes_sent < 30_000_000


async def test_get_result_inline_too_large(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution(b"[" + b"1," * 600_000 + b"1]")
    async with client(fake) as tl:
        with pytest.raises(ResultTooLargeError, match="stream_result"):
            await tl.workflows.get_result(execution_id, max_bytes=MiB)


async def test_max_bytes_applies_to_the_result_not_to_the_link_answer(
    fake: FakeTransactionLink,
) -> None:
    fake.s3.put("small", b'{"ok":true}')
    fake.s3.put("bigger", b'{"pad":"' + b"x" * 150 + b'"}')
    small = fake.create_execution(lambda _id: {"$redirect": fake.s3.presign("small")})
    bigger = fake.create_execution(lambda _id: {"$redirect": fake.s3.presign("bigger")})
    inline = fake.create_execution({"pad": "x" * 150})
    async with client(fake) as tl:
        # The link answer is ~400 bytes; the 11-byte result is what max_bytes is about.
        assert await tl.workflows.get_result(small, max_bytes=100) == {"ok": True}
        assert await tl.workflows.get_result(small, max_bytes=11) == {"ok": True}
        with pytest.raises(ResultTooLargeError) as behind_link:
            await tl.workflows.get_result(bigger, max_bytes=100)
        with pytest.raises(ResultTooLargeError) as in_the_answer:
            await tl.workflows.get_result(inline, max_bytes=100)
        assert await tl.workflows.get_result(inline, max_bytes=1000) == {"pad": "x" * 150}
    assert (behind_link.value.size, behind_link.value.limit) == (160, 100)
    assert (in_the_answer.value.size, in_the_answer.value.limit) == (161, 100)  # compact JSON


async def test_get_result_decodes_a_gzip_object_and_resumes(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    doc = {"records": [{"n": n} for n in range(20_000)]}
    packed = gzip.compress(json.dumps(doc).encode())
    fake.set_stored_result(execution_id, packed, content_encoding="gzip")
    fake.s3.inject(cut_after=1000)
    async with client(fake) as tl:
        assert await tl.workflows.get_result(execution_id) == doc
    _, second = gets(fake)
    assert second.range is not None
    assert second.status == 206


# -- stream_result ---------------------------------------------------------------------------


async def test_gzip_members_are_all_read_and_a_cut_stream_is_refused(
    fake: FakeTransactionLink,
) -> None:
    whole = fake.create_execution()
    # Two members one after the other (RFC 1952): the JSON spans both.
    fake.set_stored_result(
        whole,
        gzip.compress(b'{"records": [1, 2,') + gzip.compress(b" 3]}"),
        content_encoding="gzip",
    )
    cut = fake.create_execution()
    # All the JSON is there, but the trailer (CRC and length) never came.
    fake.set_stored_result(
        cut, gzip.compress(b'{"records": [1, 2, 3]}')[:-8], content_encoding="gzip"
    )
    async with client(fake) as tl:
        assert await tl.workflows.get_result(whole) == {"records": [1, 2, 3]}
        async with tl.workflows.stream_result(whole) as stream:
            assert [i async for i in stream.json_items("records.item")] == [1, 2, 3]
        with pytest.raises(InvalidResponseError, match="cut short"):
            await tl.workflows.get_result(cut)
        with pytest.raises(InvalidResponseError, match="cut short"):
            async with tl.workflows.stream_result(cut) as stream:
                [i async for i in stream.json_items("records.item")]


async def test_large_and_gzip_results_are_parsed_off_the_event_loop(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = "parsed-where"
    big = {marker: "x" * (2 * MiB)}
    big_inline = fake.create_execution(big)
    big_linked = fake.create_execution()
    fake.set_stored_result(big_linked, json.dumps(big).encode())
    small_gzip = fake.create_execution()
    fake.set_stored_result(
        small_gzip, gzip.compress(json.dumps({marker: 1}).encode()), content_encoding="gzip"
    )
    small_inline = fake.create_execution({marker: 2})
    on_loop: list[bool] = []
    loads = json.loads

    def spy(text: Any, *args: Any, **kwargs: Any) -> Any:
        if marker.encode() in (text if isinstance(text, bytes) else text.encode()):
            on_loop.append(threading.current_thread() is threading.main_thread())
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", spy)
    async with client(fake) as tl:
        for execution_id in (big_inline, big_linked, small_gzip, small_inline):
            await tl.workflows.get_result(execution_id)
    # Two bodies of 2 MiB and a gzip one (it could inflate to anything) in a worker
    # thread; a small plain body is cheaper to parse than to hand over.
    assert on_loop == [False, False, False, True]


FIRST_LARGE_RESULTS = """
import asyncio, json, sys, threading
from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

async def main():
    async with FakeTransactionLink() as fake:
        inline = fake.create_execution({"records": [{"n": n} for n in range(200_000)]})
        linked = fake.create_execution()
        fake.set_stored_result(linked, json.dumps(list(range(500_000))).encode())
        token = OrganizationToken(fake.org_token)
        async with TransactionLink(token, base_url=fake.base_url) as tl:
            await tl.workflows.get(inline)
            imported = []
            def note(event, args):
                if event == "import":
                    imported.append([args[0], threading.current_thread().name])
            sys.addaudithook(note)
            await tl.workflows.get_result(inline)
            await tl.workflows.get_result(linked)
            print(json.dumps(imported))

asyncio.run(main())
"""


def test_the_first_large_results_import_nothing_of_weight_on_the_loop() -> None:
    # A plain asyncio process. Imported on the loop, the result modules would stop it
    # for 15 to 50 ms in the first request for a result; the first worker thread taken
    # through anyio would import anyio's event-loop backend (some 50 ms more).
    found = subprocess.run(  # noqa: S603 - this interpreter, a script of ours
        [sys.executable, "-c", FIRST_LARGE_RESULTS], check=True, capture_output=True, text=True
    )
    imported = json.loads(found.stdout)
    ours = [thread for name, thread in imported if name.startswith("transactionlink_async")]
    assert ours  # what the results need was imported then, and the script saw it
    on_loop = [
        name
        for name, thread in imported
        if thread == "MainThread" and name.startswith(("transactionlink_async", "anyio"))
    ]
    assert not on_loop, on_loop


async def test_stream_result_chunks(fake: FakeTransactionLink) -> None:
    execution_id = large(fake, 700_000, seed=2)
    async with (
        client(fake) as tl,
        tl.workflows.stream_result(execution_id, chunk_size=64 * 1024) as stream,
    ):
        assert stream.redirected
        assert stream.content_length == 700_000
        assert stream.etag == stored(fake, execution_id).etag
        chunks = [chunk async for chunk in stream]
        assert stream.bytes_read == 700_000
        assert "X-Amz" not in repr(stream)
    assert b"".join(chunks) == expected_bytes(700_000, 2)
    assert max(len(c) for c in chunks) <= 64 * 1024


async def test_stream_result_inline(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution({"records": [1, 2, 3]})
    async with client(fake) as tl:
        async with tl.workflows.stream_result(execution_id, chunk_size=4) as stream:
            assert not stream.redirected
            assert stream.content_length == len(b'{"records": [1, 2, 3]}')
            assert stream.etag is None
            chunks = [chunk async for chunk in stream]
        async with tl.workflows.stream_result(execution_id) as stream:
            assert [item async for item in stream.json_items("records.item")] == [1, 2, 3]
    assert b"".join(chunks) == b'{"records": [1, 2, 3]}'
    assert {len(c) for c in chunks[:-1]} == {4}


async def test_stream_result_resumes_after_a_cut(fake: FakeTransactionLink) -> None:
    execution_id = large(fake, 2_000_000, seed=3)
    fake.s3.inject(cut_after=700_000)
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        data = b"".join([chunk async for chunk in stream])
    assert data == expected_bytes(2_000_000, 3)
    first, second = gets(fake)
    assert first.cut
    assert second.status == 206
    assert second.range is not None
    assert second.range.startswith("bytes=")
    assert second.range.endswith("-")
    assert second.headers["If-Match"] == stored(fake, execution_id).etag


async def test_stream_result_refuses_to_splice_a_changed_object(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake, 1_000_000, seed=1)
    key = stored(fake, execution_id).key
    fake.s3.inject(
        cut_after=300_000,
        then=lambda: fake.s3.put_generated(key, 1_000_000, seed=9, encode_slash=True),
    )
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        with pytest.raises(ResultDownloadError, match="read it again"):
            async for _ in stream:
                pass
    assert gets(fake)[-1].status == 412


async def test_stream_result_refuses_a_whole_body_answer_to_a_resume(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake, 1_000_000)
    fake.s3.inject(cut_after=300_000)
    fake.s3.inject(ignore_range=True, ranged=True)
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        with pytest.raises(ResultDownloadError, match="ignored the Range"):
            async for _ in stream:
                pass
    await wait_until_idle(fake)
    assert [r.status for r in gets(fake)] == [200, 200]


async def test_stream_result_detects_corruption(fake: FakeTransactionLink) -> None:
    execution_id = large(fake, 300_000)
    fake.s3.inject(corrupt_at=123_456)
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        with pytest.raises(ResultDownloadError, match="MD5"):
            async for _ in stream:
                pass


async def test_json_items_keeps_decimals_exact(fake: FakeTransactionLink) -> None:
    execution_id = large(fake, 400_000, seed=7)
    expected = json.loads(expected_bytes(400_000, 7), parse_float=Decimal)["records"]
    async with client(fake) as tl:
        async with tl.workflows.stream_result(execution_id) as stream:
            items = [item async for item in stream.json_items("records.item")]
        async with tl.workflows.stream_result(execution_id) as stream:
            floats = [item async for item in stream.json_items("records.item", use_float=True)]
    assert items == expected
    amounts = [i["amount"] for i in items if "amount" in i]
    assert all(isinstance(a, Decimal) for a in amounts)
    # Trailing zeros survive: a float would print 1234.5 for 1234.50.
    assert any(str(a).endswith("0") for a in amounts)
    assert all(isinstance(i["amount"], float) for i in floats if "amount" in i)


async def test_json_items_of_a_gzip_object(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    doc = {"records": [{"n": n, "v": "0.10"} for n in range(30_000)]}
    fake.set_stored_result(
        execution_id, gzip.compress(json.dumps(doc).encode()), content_encoding="gzip"
    )
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        assert stream.content_encoding == "gzip"
        items = [item async for item in stream.json_items("records.item")]
    assert items == doc["records"]


async def test_json_items_without_ijson_names_the_extra(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ijson", None)  # as if not installed
    execution_id = fake.create_execution({"records": [1]})
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        with pytest.raises(ImportError, match=r"transactionlink-async\[json\]"):
            async for _ in stream.json_items("records.item"):
                pass


async def test_json_items_of_invalid_json(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution(b'{"records": [1, 2, oops]}')
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        with pytest.raises(InvalidResponseError, match="not valid JSON"):
            async for _ in stream.json_items("records.item"):
                pass


async def test_json_items_memory_stays_flat_on_a_50_mb_body(fake: FakeTransactionLink) -> None:
    # 5000 items of 10 kB: few enough allocations for tracemalloc to stay quick, while a
    # reader that held the body, or the items, would show 50 MB here.
    blob = "x" * 10_000
    records = b", ".join(b'{"n": %d, "blob": "%s"}' % (n, blob.encode()) for n in range(5000))
    body = b'{"records": [' + records + b"]}"
    execution_id = fake.create_execution()
    fake.set_stored_result(execution_id, body)
    del records, body
    count = 0
    async with client(fake) as tl:
        # Warm up (imports, the session) outside the measurement.
        await tl.workflows.get_result(fake.create_execution({"a": 1}))
        tracemalloc.start()
        try:
            async with tl.workflows.stream_result(execution_id) as stream:
                async for item in stream.json_items("records.item"):
                    assert item["n"] == count
                    count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == 5000
    # Everything in this process counts here, the fake S3 serving the body included.
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"


async def test_leaving_the_stream_early_releases_the_connection(
    fake: FakeTransactionLink,
) -> None:
    execution_id = large(fake, 20_000_000)
    async with client(fake) as tl:
        async with tl.workflows.stream_result(execution_id) as stream:
            async for _ in stream:
                break
        async with tl.workflows.stream_result(execution_id) as stream:
            async for _ in stream.json_items("records.item"):
                break
        await wait_until_idle(fake)
        assert all(r.hung_up for r in gets(fake))
        with pytest.raises(RuntimeError, match="closed"):
            await stream.__anext__()


async def test_a_stream_is_read_once(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution({"a": 1})
    async with client(fake) as tl, tl.workflows.stream_result(execution_id) as stream:
        _ = [c async for c in stream]
        with pytest.raises(RuntimeError, match="once"):
            stream.json_items("item")


# -- download_result -------------------------------------------------------------------------


async def test_download_writes_the_exact_bytes(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = large(fake, 3_000_000, seed=5)
    destination = tmp_path / "result.json"
    progress = Progress()
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, destination, on_progress=progress)
    assert destination.read_bytes() == expected_bytes(3_000_000, 5)
    assert result == DownloadedResult(
        path=destination,
        size=3_000_000,
        md5=file_md5(destination),
        etag=stored(fake, execution_id).etag,
        md5_verified=True,
        redirected=True,
        attempts=1,
        resumes=0,
        restarts=0,
        url_refreshes=0,
        content_encoding=None,
    )
    progress.check(3_000_000)
    assert all(total == 3_000_000 for _, total in progress.calls)
    assert names(tmp_path) == [destination.name]
    assert {r.method for r in fake.s3.journal} == {"GET"}  # never a HEAD
    assert destination.stat().st_mode & 0o777 == 0o600  # results hold personal data


async def test_download_of_an_inline_result(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = fake.create_execution({"decision": "APPROVED"})
    destination = tmp_path / "r.json"
    progress = Progress()
    async with client(fake) as tl:
        result = await tl.workflows.download_result(
            execution_id, str(destination), on_progress=progress
        )
    assert json.loads(destination.read_bytes()) == {"decision": "APPROVED"}
    assert not result.redirected
    assert result.attempts == 0
    assert result.md5 == file_md5(destination)
    assert not result.md5_verified
    assert progress.calls == [(result.size, result.size)]
    assert names(tmp_path) == [destination.name]


async def test_300_mb_with_three_cuts_resumes_each_time(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    size = 300_000_000
    execution_id = large(fake, size, seed=1)
    rng = random.Random(20260101)
    cuts = [rng.randrange(1, 80_000_000) for _ in range(3)]
    for cut in cuts:
        fake.s3.inject(cut_after=cut)
    destination = tmp_path / "big.json"
    progress = Progress()
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, destination, on_progress=progress)
    assert file_md5(destination) == GeneratedJson(size, 1).md5_hex() == result.md5
    assert (result.size, result.resumes, result.restarts, result.attempts) == (size, 3, 0, 4)
    requests = gets(fake)
    assert [r.status for r in requests] == [200, 206, 206, 206]
    assert [r.cut for r in requests] == [True, True, True, False]
    assert requests[0].range is None
    offsets = [int(r.range.removeprefix("bytes=").rstrip("-")) for r in requests[1:] if r.range]
    assert offsets == sorted(offsets)
    assert offsets[0] > 0
    # Nothing read twice, bar what was in flight at each cut.
    assert sum(r.bytes_sent for r in requests) < size + 3 * 4 * MiB
    progress.check(size)


async def test_expired_link_at_resume_asks_the_api_again(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 2_000_000)
    fake.s3.inject(cut_after=500_000, then=fake.s3.expire_urls)
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert fake.count("GET", "/workflows/*/result") == 2
    first, expired, resumed = gets(fake)
    assert expired.status == 403
    assert resumed.status == 206
    assert resumed.query != first.query  # the fresh link
    assert (result.url_refreshes, result.resumes, result.restarts) == (1, 1, 0)
    assert file_md5(tmp_path / "r.json") == result.md5 == GeneratedJson(2_000_000).md5_hex()


async def test_a_link_past_its_lifetime_is_renewed_before_resuming(tmp_path: Path) -> None:
    async with FakeTransactionLink(s3_url_lifetime=1) as fake:
        execution_id = large(fake, 1_000_000)
        # The first answer outlives the link (1 s), then breaks off.
        fake.s3.inject(cut_after=50_000, drip=1.1, drip_bytes=50_000)
        async with client(fake) as tl:
            result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
        assert fake.count("GET", "/workflows/*/result") == 2
        assert [r.status for r in gets(fake)] == [200, 206]  # no 403: renewed beforehand
        assert (result.url_refreshes, result.resumes) == (1, 1)
        assert file_md5(tmp_path / "r.json") == GeneratedJson(1_000_000).md5_hex()


async def test_a_link_expired_before_its_first_use(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 100_000)
    fake.s3.inject(status=403, code="AccessDenied", message="Request has expired")
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert result.url_refreshes == 1
    assert fake.count("GET", "/workflows/*/result") == 2


@pytest.mark.parametrize("multipart", [False, True])
async def test_a_200_to_a_range_starts_over_instead_of_appending(
    fake: FakeTransactionLink, tmp_path: Path, multipart: bool
) -> None:
    size = 6_000_000
    execution_id = large(fake, size, seed=6, multipart_etag=multipart)
    fake.s3.inject(cut_after=4_500_000)
    fake.s3.inject(ignore_range=True, ranged=True)
    destination = tmp_path / "r.json"
    progress = Progress()
    async with client(fake) as tl:
        result = await tl.workflows.download_result(
            execution_id, destination, on_progress=progress, chunk_size=MiB
        )
    # Checked on size and bytes, not only on the MD5 (a multipart ETag has none).
    assert destination.stat().st_size == size
    assert file_md5(destination) == GeneratedJson(size, 6).md5_hex()
    assert result.md5_verified is not multipart
    # A multipart ETag cannot check an MD5, so none is spent computing it.
    assert (result.md5 is None) is multipart
    assert (result.restarts, result.resumes, result.attempts) == (1, 0, 2)
    assert [r.status for r in gets(fake)] == [200, 200]
    assert gets(fake)[1].range is not None
    progress.check(size, rollbacks=1)
    assert (0, size) in progress.calls


async def test_412_starts_over_with_the_new_object(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 1_000_000, seed=1)
    key = stored(fake, execution_id).key
    fake.s3.inject(
        cut_after=600_000,
        then=lambda: fake.s3.put_generated(key, 1_200_000, seed=2, encode_slash=True),
    )
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert [r.status for r in gets(fake)] == [200, 412, 200]
    assert result.size == 1_200_000
    assert result.restarts == 1
    assert file_md5(tmp_path / "r.json") == GeneratedJson(1_200_000, 2).md5_hex()


async def test_416_at_the_exact_end_counts_as_done(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    size = 200_000
    execution_id = large(fake, size)
    # All bytes arrive, then the connection dies before the chunked body's terminator.
    fake.s3.inject(chunked=True, cut_after=size, drip=0.2, drip_bytes=size)
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    first, last = gets(fake)
    assert first.cut
    assert (last.status, last.range) == (416, f"bytes={size}-")
    assert (result.size, result.attempts, result.restarts) == (size, 2, 0)
    assert result.md5_verified
    assert file_md5(tmp_path / "r.json") == GeneratedJson(size).md5_hex()


async def test_gzip_is_saved_as_stored(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = fake.create_execution()
    packed = gzip.compress(json.dumps({"records": list(range(50_000))}).encode())
    fake.set_stored_result(execution_id, packed, content_encoding="gzip")
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json.gz")
    assert (tmp_path / "r.json.gz").read_bytes() == packed
    assert result.content_encoding == "gzip"
    assert result.md5_verified


async def test_more_signed_headers_than_host_means_no_resume(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    fake.s3.signed_headers = ("host", "range")
    execution_id = large(fake, 1_000_000)
    fake.s3.inject(cut_after=400_000)
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert [r.range for r in gets(fake)] == [None, None]
    assert [r.status for r in gets(fake)] == [200, 200]
    assert (result.restarts, result.resumes) == (1, 0)
    assert file_md5(tmp_path / "r.json") == GeneratedJson(1_000_000).md5_hex()


async def test_md5_mismatch_starts_over(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = large(fake, 500_000)
    fake.s3.inject(corrupt_at=250_000)
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert (result.restarts, result.attempts) == (1, 2)
    assert file_md5(tmp_path / "r.json") == GeneratedJson(500_000).md5_hex()


async def test_verify_md5_false_skips_the_check(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = large(fake, 500_000)
    fake.s3.inject(corrupt_at=10, times=2)
    async with client(fake) as tl:
        result = await tl.workflows.download_result(
            execution_id, tmp_path / "r.json", verify_md5=False
        )
        async with tl.workflows.stream_result(execution_id, verify_md5=False) as stream:
            data = b"".join([chunk async for chunk in stream])
    assert (result.md5, result.md5_verified, result.restarts) == (None, False, 0)
    assert result.size == len(data) == 500_000
    assert file_md5(tmp_path / "r.json") != GeneratedJson(500_000).md5_hex()


async def test_persistent_corruption_gives_up_and_leaves_nothing(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 500_000)
    fake.s3.inject(corrupt_at=10, times=None)
    async with client(fake) as tl:
        with pytest.raises(ResultDownloadError, match="MD5"):
            await tl.workflows.download_result(execution_id, tmp_path / "r.json", max_attempts=3)
    assert len(gets(fake)) == 3
    assert names(tmp_path) == []


async def test_unrecoverable_failure_leaves_the_destination_untouched(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 500_000)
    fake.s3.inject(status=404, code="NoSuchKey", message="The specified key does not exist.")
    destination = tmp_path / "r.json"
    destination.write_bytes(b"previous")
    async with client(fake) as tl:
        with pytest.raises(ResultDownloadError, match="NoSuchKey") as caught:
            await tl.workflows.download_result(execution_id, destination)
    assert destination.read_bytes() == b"previous"
    assert names(tmp_path) == [destination.name]
    assert len(gets(fake)) == 1
    assert "X-Amz" not in str(caught.value)


async def test_gives_up_after_max_attempts(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = large(fake, 500_000)
    fake.s3.inject(cut_after=1000, times=None)
    async with client(fake) as tl:
        with pytest.raises(ResultDownloadError, match="after 3 requests") as caught:
            await tl.workflows.download_result(execution_id, tmp_path / "r.json", max_attempts=3)
    assert len(gets(fake)) == 3
    assert "broke off" in str(caught.value)
    assert names(tmp_path) == []


async def test_cancelling_mid_download_leaves_no_file_and_no_connection(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 5_000_000)
    fake.s3.inject(drip=0.01, drip_bytes=16 * 1024)
    destination = tmp_path / "r.json"
    async with client(fake) as tl:
        with anyio.move_on_after(0.3) as scope:
            await tl.workflows.download_result(execution_id, destination, chunk_size=64 * 1024)
        assert scope.cancelled_caught
        assert names(tmp_path) == []
        await wait_until_idle(fake)
        (request,) = gets(fake)
        assert request.hung_up
        assert 0 < request.bytes_sent < 5_000_000


async def test_no_hidden_resend_every_request_is_counted(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 100_000)
    fake.s3.inject(drop=True)
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
        fake.s3.inject(drop=True)
        with pytest.raises(ResultDownloadError, match="after 1 requests"):
            await tl.workflows.download_result(execution_id, tmp_path / "s.json", max_attempts=1)
    assert result.attempts == 2
    assert len(gets(fake)) == 3


async def test_slow_down_is_retried(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = large(fake, 100_000)
    fake.s3.inject(status=503, code="SlowDown", message="Please reduce your request rate.")
    async with client(fake) as tl:
        result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert [r.status for r in gets(fake)] == [503, 200]
    assert result.attempts == 2


async def test_an_idle_body_times_out_and_resumes(tmp_path: Path) -> None:
    async with FakeTransactionLink() as fake:
        execution_id = large(fake, 1_000_000)
        fake.s3.inject(stall_after=300_000)
        async with client(fake, timeouts=Timeouts(read=0.2)) as tl:
            result = await tl.workflows.download_result(execution_id, tmp_path / "r.json")
        assert (result.resumes, result.attempts) == (1, 2)
        assert file_md5(tmp_path / "r.json") == GeneratedJson(1_000_000).md5_hex()


async def test_disk_writes_come_in_large_batches(
    fake: FakeTransactionLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = large(fake, 20_000_000)
    batches: list[int] = []
    write = AtomicFile.write

    def spy(self: AtomicFile, chunks: list[bytes]) -> int:
        batches.append(sum(map(len, chunks)))
        return write(self, chunks)

    monkeypatch.setattr(AtomicFile, "write", spy)
    async with client(fake) as tl:
        await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    assert sum(batches) == 20_000_000
    assert min(batches[:-1]) >= MiB


async def test_async_progress_and_a_failing_callback(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 3_000_000)
    seen: list[int] = []

    async def report(done: int, total: int | None) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(done)

    def explode(done: int, total: int | None) -> None:
        raise KeyError("stop here")

    async with client(fake) as tl:
        await tl.workflows.download_result(execution_id, tmp_path / "a.json", on_progress=report)
        with pytest.raises(KeyError, match="stop here"):
            await tl.workflows.download_result(
                execution_id, tmp_path / "b.json", on_progress=explode
            )
    assert seen[-1] == 3_000_000
    assert names(tmp_path) == ["a.json"]


async def test_bad_destinations_fail_before_any_request(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 1000)
    async with client(fake) as tl:
        with pytest.raises(IsADirectoryError):
            await tl.workflows.download_result(execution_id, tmp_path)
        with pytest.raises(FileNotFoundError):
            await tl.workflows.download_result(execution_id, tmp_path / "missing" / "r.json")
        with pytest.raises(TypeError):
            await tl.workflows.download_result(execution_id, 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_attempts"):
            await tl.workflows.download_result(execution_id, tmp_path / "r", max_attempts=0)
        with pytest.raises(ValueError, match="chunk_size"):
            tl.workflows.stream_result(execution_id, chunk_size=0)
        with pytest.raises(ValueError, match="plain id"):
            tl.workflows.stream_result("../x")
    assert fake.journal == []
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.example.com/a b?X-Amz-Signature=topsecret",
        "https://s3.example.com/caf\u00e9?X-Amz-Signature=topsecret",
        "http://s3.example.com/k?X-Amz-Signature=topsecret",
    ],
)
async def test_unsendable_links_are_refused(
    fake: FakeTransactionLink, tmp_path: Path, url: str
) -> None:
    execution_id = fake.create_execution({"$redirect": url})
    async with client(fake) as tl:
        with pytest.raises(ResultDownloadError) as caught:
            await tl.workflows.download_result(execution_id, tmp_path / "r.json")
        with pytest.raises(ResultDownloadError):
            await tl.workflows.get_result(execution_id)
    assert "topsecret" not in str(caught.value)
    assert names(tmp_path) == []


async def test_no_signature_in_logs_errors_or_reprs(
    fake: FakeTransactionLink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transactionlink_async")
    execution_id = large(fake, 500_000)
    fake.s3.inject(cut_after=1000, then=fake.s3.expire_urls)
    fake.s3.inject(status=503, code="SlowDown", message="slow")
    texts: list[str] = []
    async with client(fake) as tl:
        texts.append(repr(await tl.workflows.download_result(execution_id, tmp_path / "r")))
        fake.s3.inject(status=403, code="SignatureDoesNotMatch", message="no")
        try:
            await tl.workflows.download_result(execution_id, tmp_path / "s")
        except ResultDownloadError as exc:
            texts.append(str(exc) + repr(exc))
        async with tl.workflows.stream_result(execution_id) as stream:
            texts.append(repr(stream))
    texts += [r.getMessage() for r in caplog.records]
    text = "\n".join(texts)
    assert "SignatureDoesNotMatch" in text
    assert "asking the API for a fresh link" in text
    queries = [r.query for r in fake.s3.journal]
    assert len(queries) >= 4
    for query in queries:
        for part in query.split("&"):
            name, value = part.split("=", 1)
            # Short values (X-Amz-Expires=300) are not secrets and may occur by chance.
            if "Signature" in name or "Credential" in name or len(value) >= 16:
                assert value not in text
    assert "X-Amz" not in text


async def test_closing_the_client_closes_the_s3_session(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = large(fake, 100_000)
    tl = client(fake)
    async with tl:
        await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    gc.collect()
    assert not [
        o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed
    ]
    with pytest.raises(ClientClosedError):
        await tl.workflows.download_result(execution_id, tmp_path / "s.json")
    assert names(tmp_path) == ["r.json"]


async def wait_until_idle(fake: FakeTransactionLink) -> None:
    """Until the fake S3 has seen every connection end (it offers no event to wait on)."""
    with anyio.fail_after(2):
        while fake.s3.in_flight():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_large_bodies_are_joined_off_the_event_loop(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Copying tens of megabytes into fresh memory takes tens of milliseconds: a large
    # answer's pieces are joined in a worker thread (bytes.join lets the GIL go as it
    # copies), a small one's where they are.
    big = {"records": ["x" * 1000] * 3000}
    big_inline = fake.create_execution(big)
    small_inline = fake.create_execution({"records": [1]})
    joined_on_loop: list[bool] = []
    join = _transport.join_pieces

    def spy(chunks: list[bytes]) -> bytes:
        joined_on_loop.append(threading.current_thread() is threading.main_thread())
        return join(chunks)

    monkeypatch.setattr(_transport, "join_pieces", spy)
    async with client(fake) as tl:
        assert await tl.workflows.get_result(big_inline) == big
        assert await tl.workflows.get_result(small_inline) == {"records": [1]}
    assert joined_on_loop == [False]


async def test_waiting_for_a_thread_to_join_a_body_is_no_part_of_its_time_limits(
    fake: FakeTransactionLink,
) -> None:
    # The worker threads are shared (a web framework runs its sync handlers on them): a
    # body that arrived whole is joined once the attempt is over, not timed out waiting.
    big = {"records": ["x" * 1000] * 3000}
    execution_id = fake.create_execution(big)
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    limiter.total_tokens = 1
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, time.sleep, 1.0)
            await anyio.sleep(0.05)
            async with client(fake, timeouts=Timeouts(read=0.3, total=0.6)) as tl:
                assert await tl.workflows.get_result(execution_id) == big
    finally:
        limiter.total_tokens = tokens
    assert fake.count("GET", "/workflows/*/result") == 1


async def test_a_linked_result_in_many_pieces_parses_whole(fake: FakeTransactionLink) -> None:
    document = {"records": [{"n": i, "pad": "y" * 200} for i in range(12_000)]}
    execution_id = fake.create_execution()
    fake.set_stored_result(execution_id, json.dumps(document).encode())
    async with client(fake) as tl:
        assert await tl.workflows.get_result(execution_id) == document
