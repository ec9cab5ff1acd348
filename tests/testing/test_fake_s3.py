"""The fake S3 over real sockets with a raw aiohttp client: as picky as the real one."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import anyio
import pytest
import yarl

from transactionlink_async.testing import FakeS3, FakeTransactionLink, GeneratedJson

pytestmark = pytest.mark.anyio

KEY = "results/o'brien ~x/y.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def s3() -> AsyncIterator[FakeS3]:
    async with FakeS3() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def get(
    http: aiohttp.ClientSession,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    exact: bool = True,
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    target = yarl.URL(url, encoded=True) if exact else url
    async with http.request(method, target, headers=headers or {}) as resp:
        body = await resp.read()
    return resp.status, body, resp


def md5hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def code_of(body: bytes) -> str:
    return body.split(b"<Code>")[1].split(b"</Code>")[0].decode()


async def test_a_signed_url_serves_the_object(s3: FakeS3, http: aiohttp.ClientSession) -> None:
    stored = s3.put(KEY, b'{"a": 1}', encode_slash=True)
    url = s3.presign(KEY)
    assert "%27" in url
    assert "%2F" in url
    assert "%20" in url
    assert "~" in url
    status, body, resp = await get(http, url)
    assert (status, body) == (200, b'{"a": 1}')
    assert resp.headers["ETag"] == stored.etag == f'"{md5hex(body)}"'
    assert resp.headers["Content-Type"] == "binary/octet-stream"
    assert s3.journal[0].path == stored.raw_path


async def test_a_requoted_url_breaks_the_signature(s3: FakeS3, http: aiohttp.ClientSession) -> None:
    s3.put(KEY, b"x")
    status, body, _ = await get(http, s3.presign(KEY), exact=False)
    assert status == 403
    assert code_of(body) == "SignatureDoesNotMatch"


async def test_only_the_query_requoted_breaks_it_too(
    s3: FakeS3, http: aiohttp.ClientSession
) -> None:
    s3.put("plain", b"x")
    url = s3.presign("plain")
    assert "%2F" in url.split("?")[1]
    status, body, _ = await get(http, url.replace("%2F", "/"))
    assert status == 403
    assert code_of(body) == "SignatureDoesNotMatch"


async def test_an_authorization_header_as_well_is_a_400(
    s3: FakeS3, http: aiohttp.ClientSession
) -> None:
    s3.put(KEY, b"x")
    status, body, _ = await get(http, s3.presign(KEY), headers={"Authorization": "tot_abc"})
    assert status == 400
    assert code_of(body) == "InvalidArgument"
    assert b"Only one auth mechanism allowed" in body


async def test_head_on_a_get_signed_url_is_a_403(s3: FakeS3, http: aiohttp.ClientSession) -> None:
    s3.put(KEY, b"x")
    status, body, _ = await get(http, s3.presign(KEY), method="HEAD")
    assert (status, body) == (403, b"")


async def test_expiry_is_checked_when_a_request_starts(
    s3: FakeS3, http: aiohttp.ClientSession
) -> None:
    s3.put_generated(KEY, 400_000)
    url = s3.presign(KEY)
    s3.inject(drip=0.05, drip_bytes=100_000, then=s3.expire_urls)
    # Begun in time, finishes even though the URL expires meanwhile.
    status, body, _ = await get(http, url)
    assert (status, len(body)) == (200, 400_000)
    status, body, _ = await get(http, url)
    assert status == 403
    assert code_of(body) == "AccessDenied"
    assert b"<Message>Request has expired</Message>" in body
    assert b"<X-Amz-Expires>300</X-Amz-Expires>" in body
    status, _, _ = await get(http, s3.presign(KEY))
    assert status == 200


async def test_url_lifetime_is_in_the_url_and_enforced(http: aiohttp.ClientSession) -> None:
    async with FakeS3(url_lifetime=0.05) as s3:
        s3.put("k", b"x")
        url = s3.presign("k")
        assert "X-Amz-Expires=1&" in url
        assert "X-Amz-SignedHeaders=host&" in url
        await anyio.sleep(0.1)
        status, _, _ = await get(http, url)
        assert status == 403


async def test_ranges_if_match_412_and_416(s3: FakeS3, http: aiohttp.ClientSession) -> None:
    data = bytes(range(256)) * 40
    stored = s3.put(KEY, data)
    url = s3.presign(KEY)
    status, body, resp = await get(
        http, url, headers={"Range": "bytes=1000-", "If-Match": stored.etag}
    )
    assert (status, body) == (206, data[1000:])
    assert resp.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    status, body, _ = await get(http, url, headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])
    status, body, _ = await get(http, url, headers={"Range": "bytes=-5"})
    assert (status, body) == (206, data[-5:])
    status, body, _ = await get(http, url, headers={"Range": "bytes=1000-", "If-Match": '"x"'})
    assert status == 412
    assert code_of(body) == "PreconditionFailed"
    status, body, resp = await get(http, url, headers={"Range": f"bytes={len(data)}-"})
    assert status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
    status, body, _ = await get(http, url, headers={"Range": "lines=1-2"})
    assert (status, body) == (200, data)


async def test_gzip_objects_are_served_as_stored(s3: FakeS3, http: aiohttp.ClientSession) -> None:
    packed = gzip.compress(b'{"a": 1}' * 100)
    stored = s3.put(KEY, packed, content_encoding="gzip")
    status, body, resp = await get(http, s3.presign(KEY))
    assert (status, body) == (200, packed)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert stored.etag == f'"{md5hex(packed)}"'


async def test_multipart_etag_is_not_the_md5(s3: FakeS3) -> None:
    stored = s3.put(KEY, b"abc", multipart_etag=True)
    assert stored.etag.endswith('-3"')
    assert md5hex(b"abc") not in stored.etag


async def test_faults_cut_drop_corrupt_and_ignore_range(
    s3: FakeS3, http: aiohttp.ClientSession
) -> None:
    data = bytes(random.Random(1).randbytes(50_000))
    s3.put(KEY, data)
    url = s3.presign(KEY)
    s3.inject(cut_after=1000)
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(http, url)
    assert s3.journal[-1].cut
    s3.inject(drop=True)
    async with aiohttp.ClientSession() as plain:
        plain._retry_connection = False  # else aiohttp silently sends it a second time
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await get(plain, url)
    assert s3.journal[-1].status is None
    s3.inject(corrupt_at=10)
    status, body, _ = await get(http, url)
    assert status == 200
    assert body[10] == data[10] ^ 0xFF
    assert body[:10] + body[11:] == data[:10] + data[11:]
    s3.inject(ignore_range=True, ranged=True)
    status, body, _ = await get(http, url, headers={"Range": "bytes=100-"})
    assert (status, body) == (200, data)
    s3.inject(status=503, code="SlowDown", message="Please reduce your request rate.")
    status, body, _ = await get(http, url)
    assert status == 503
    assert code_of(body) == "SlowDown"
    s3.inject(chunked=True)
    status, body, resp = await get(http, url)
    assert (status, body) == (200, data)
    assert "Content-Length" not in resp.headers


async def test_signed_range_header_refuses_any_range(
    s3: FakeS3, http: aiohttp.ClientSession
) -> None:
    s3.put(KEY, b"abcdef")
    s3.signed_headers = ("host", "range")
    url = s3.presign(KEY)
    assert "X-Amz-SignedHeaders=host%3Brange" in url
    status, _, _ = await get(http, url)
    assert status == 200
    status, _, _ = await get(http, url, headers={"Range": "bytes=2-"})
    assert status == 403


def test_generated_json_is_exact_valid_and_random_access() -> None:
    rng = random.Random(5)
    for size in (30, 1000, 70_000, 300_001):
        doc = GeneratedJson(size, seed=size)
        data = b"".join(doc.read(0, size, 4096))
        assert len(data) == size
        parsed = json.loads(data, parse_float=Decimal)
        assert len(parsed["records"]) == doc.item_count
        assert parsed["records"][-1] == {"end": True}
        assert md5hex(data) == doc.md5_hex()
        for _ in range(20):
            start = rng.randrange(size)
            stop = rng.randrange(start, size + 1)
            assert b"".join(doc.read(start, stop, 777)) == data[start:stop]
    with pytest.raises(ValueError, match="at least"):
        GeneratedJson(10)


async def test_the_api_redirects_large_results_to_s3(http: aiohttp.ClientSession) -> None:
    async with FakeTransactionLink(inline_result_limit=1000) as fake:
        small = fake.create_execution({"a": 1})
        big = fake.create_execution({"blob": "x" * 5000})
        generated = fake.create_execution()
        key = fake.set_large_result(generated, size=20_000, seed=3)
        auth = {"Authorization": fake.org_token}
        base = fake.base_url
        assert fake.s3.base_url != base

        async def result(eid: str) -> object:
            async with http.get(f"{base}/workflows/{eid}/result", headers=auth) as resp:
                return await resp.json()

        assert await result(small) == {"a": 1}
        first, second = await result(big), await result(big)
        assert isinstance(first, dict)
        assert isinstance(second, dict)
        assert first["$redirect"] != second["$redirect"]  # a fresh URL on every call
        status, body, _ = await get(http, first["$redirect"])
        assert (status, json.loads(body)) == (200, {"blob": "x" * 5000})
        link = await result(generated)
        assert isinstance(link, dict)
        status, body, _ = await get(http, link["$redirect"])
        assert (status, len(body)) == (200, 20_000)
        assert md5hex(body) == fake.s3.get(key).md5_hex


async def test_serve_hosts_a_large_generated_result(http: aiohttp.ClientSession) -> None:
    root = REPO_ROOT
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transactionlink_async.testing",
        "serve",
        "--large-result-bytes",
        "300000",
        "--large-result-seed",
        "4",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert info["large_result_bytes"] == 300_000
        assert info["large_result_items"] == GeneratedJson(300_000, 4).item_count
        url = f"{info['base_url']}/workflows/{info['large_result_id']}/result"
        async with http.get(url, headers={"Authorization": info["org_token"]}) as resp:
            link = (await resp.json())["$redirect"]
        assert link.startswith(info["s3_base_url"])
        status, body, _ = await get(http, link)
        assert (status, len(body)) == (200, 300_000)
        assert md5hex(body) == info["large_result_md5"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
