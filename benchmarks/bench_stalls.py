"""Event-loop stalls: how long the loop freezes while the SDK handles large bodies.

A probe task asks to wake every millisecond (benchmarks/_lag.py); a stall of the loop
shows as one late wake-up as long as the stall, which would freeze every other request
of a web worker. Measured for `get_result` of a large inline result (58 MB, within the
default max_bytes), `json_items` and `download_result` of a result behind a pre-signed
link, and webhook verification of a 1 MiB body; each against what one would write by
hand. The target is no stall over 50 ms. Run alone:

    python -m benchmarks.bench_stalls [--before DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from transactionlink_async import OrganizationToken, TransactionLink

from ._harness import BEFORE_ENV, FLOOR, compare, fake_server
from ._lag import LagProbe

MB = 1000 * 1000
MiB = 1024 * 1024
INLINE_BYTES = 58 * MB
LINKED_BYTES = 256 * MiB
WEBHOOK_BYTES = 1 * MiB - 512
WEBHOOK_COUNT = 20


def _client(base_url: str, token: str) -> TransactionLink:
    return TransactionLink(OrganizationToken(token), base_url=base_url)


def _figures(probe: LagProbe, started: float) -> dict[str, Any]:
    return {**probe.figures(), "seconds": time.perf_counter() - started}


async def sdk_get_result(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    async with _client(base_url, token) as tl:
        await tl.workflows.get(execution_id)  # the connection is open, the imports done
        async with LagProbe() as probe:
            started = time.perf_counter()
            result = await tl.workflows.get_result(execution_id)
        figures = _figures(probe, started)
    assert result["records"]
    return figures


async def aiohttp_json(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    """The same result with `await response.json()`: json.loads on the loop."""
    headers = {"Authorization": token}
    url = f"{base_url}/workflows/{execution_id}/result"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base_url}/workflows/{execution_id}") as response:
            await response.read()
        async with LagProbe() as probe:
            started = time.perf_counter()
            async with session.get(url) as response:
                result = await response.json()
        figures = _figures(probe, started)
    assert result["records"]
    return figures


async def decode_floor(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    """The body fetched first, then only its decoding to one str, in a worker thread.

    json parses one whole str, and Python holds the GIL while it makes one: that step,
    fresh memory of the body's size filled in one stretch, is the least stall any parse
    of the whole document into Python objects can cause, on the loop or off it.
    """
    headers = {"Authorization": token}
    url = f"{base_url}/workflows/{execution_id}/result"
    async with aiohttp.ClientSession(headers=headers) as session, session.get(url) as response:
        body = await response.read()
    async with LagProbe() as probe:
        started = time.perf_counter()
        text = await asyncio.to_thread(body.decode)
    figures = _figures(probe, started)
    assert len(text) == len(body)
    return figures


async def sdk_json_items(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    count = 0
    async with _client(base_url, token) as tl:
        async with LagProbe() as probe:
            started = time.perf_counter()
            async with tl.workflows.stream_result(execution_id) as stream:
                async for _ in stream.json_items("records.item"):
                    count += 1
        figures = _figures(probe, started)
    assert count
    return figures


async def _link(session: aiohttp.ClientSession, base_url: str, token: str, eid: str) -> str:
    url = f"{base_url}/workflows/{eid}/result"
    async with session.get(url, headers={"Authorization": token}) as response:
        response.raise_for_status()
        link: str = (await response.json())["$redirect"]
    return link


async def raw_ijson(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    import ijson

    backend = ijson.get_backend("yajl2_c")
    count = 0
    async with aiohttp.ClientSession() as session:
        async with LagProbe() as probe:
            started = time.perf_counter()
            link = await _link(session, base_url, token, execution_id)
            async with session.get(yarl.URL(link, encoded=True)) as response:
                async for _ in backend.items_async(response.content, "records.item"):
                    count += 1
        figures = _figures(probe, started)
    assert count
    return figures


async def sdk_download(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-stalls-"))
    async with _client(base_url, token) as tl:
        async with LagProbe() as probe:
            started = time.perf_counter()
            done = await tl.workflows.download_result(execution_id, folder / "result.json")
        figures = _figures(probe, started)
    assert done.md5_verified
    _remove(done.path)
    return figures


async def raw_download(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    """A careful hand-written loop: chunks to a file, MD5 inline, fsync, rename."""
    folder = Path(tempfile.mkdtemp(prefix="bench-stalls-"))
    digest = hashlib.md5(usedforsecurity=False)
    async with aiohttp.ClientSession() as session:
        async with LagProbe() as probe:
            started = time.perf_counter()
            link = await _link(session, base_url, token, execution_id)
            async with session.get(yarl.URL(link, encoded=True)) as response:
                with (folder / "part").open("wb") as handle:
                    async for chunk in response.content.iter_chunked(MiB):
                        handle.write(chunk)
                        digest.update(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(folder / "part", folder / "result.json")
        figures = _figures(probe, started)
    assert f'"{digest.hexdigest()}"' == response.headers["ETag"]
    _remove(folder / "result.json")
    return figures


def _remove(path: Path) -> None:
    path.unlink()
    path.parent.rmdir()


def _webhook_payloads() -> list[dict[str, Any]]:
    return [
        {"workflowId": f"0b6c7a52-6d1e-4c3a-9f0e-{n:012d}", "status": "COMPLETED"}
        | {"data": {"note": "x" * (WEBHOOK_BYTES - 120)}}
        for n in range(WEBHOOK_COUNT)
    ]


async def sdk_verify(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    from transactionlink_async.testing import FakeTransactionLink

    async with FakeTransactionLink() as fake:
        deliveries = [fake.webhooks.signed(p) for p in _webhook_payloads()]
        async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
            await tl.webhooks.verify(*deliveries[0])  # the key is cached
            async with LagProbe() as probe:
                started = time.perf_counter()
                for headers, body in deliveries:
                    await tl.webhooks.handle(headers, body)
                    await asyncio.sleep(0)  # deliveries come one request at a time
            figures = _figures(probe, started)
    return figures


async def raw_verify(base_url: str, token: str, execution_id: str) -> dict[str, Any]:
    """What one writes with cryptography alone: split, decode, verify, parse, on the loop."""
    import base64
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from transactionlink_async.testing import FakeTransactionLink

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    async with FakeTransactionLink() as fake:
        deliveries = [fake.webhooks.signed(p) for p in _webhook_payloads()]
        key = fake.webhooks.keyring.private_key().public_key()
        async with LagProbe() as probe:
            started = time.perf_counter()
            for headers, body in deliveries:
                head, _, signature = headers["JWS-SIGNATURE"].split(".")
                data = head.encode() + b"." + base64.urlsafe_b64encode(body).rstrip(b"=")
                key.verify(unb64(signature), data, padding.PKCS1v15(), hashes.SHA256())
                json.loads(body)
                await asyncio.sleep(0)
        figures = _figures(probe, started)
    return figures


EXTRA = ("cpu_lag_p99_ms", "gc_max_ms", "lag_max_ms", "lag_p99_ms", "seconds")


def main(quick: bool = False) -> None:
    rounds = 1 if quick else 3
    inline = 8 * MB if quick else INLINE_BYTES
    linked = 64 * MiB if quick else LINKED_BYTES
    serve = ("--inline-result-bytes", str(inline), "--large-result-bytes", str(linked))
    with fake_server(*serve, "--journal-limit", "1000") as server:
        base = {"base_url": server.base_url, "token": server.org_token}
        inline_kwargs = {**base, "execution_id": server.raw["inline_result_id"]}
        linked_kwargs = {**base, "execution_id": server.raw["large_result_id"]}
        get_result = f"stall_get_result_{inline // MB}mb"
        for name, ours, peer, kwargs in (
            (get_result, "sdk_get_result", "aiohttp_json", inline_kwargs),
            (f"stall_json_items_{linked // MiB}m", "sdk_json_items", "raw_ijson", linked_kwargs),
            (f"stall_download_{linked // MiB}m", "sdk_download", "raw_download", linked_kwargs),
            ("stall_webhook_verify_1m", "sdk_verify", "raw_verify", base | {"execution_id": ""}),
        ):
            contenders = {
                "sdk": (f"benchmarks.bench_stalls:{ours}", kwargs),
                "handwritten": (f"benchmarks.bench_stalls:{peer}", kwargs),
            }
            if name == get_result:
                contenders[FLOOR] = ("benchmarks.bench_stalls:decode_floor", kwargs)
            compare(
                name,
                contenders,
                rounds=rounds,
                metric="cpu_lag_max_ms",
                unit="ms",
                higher_is_better=False,
                extra_metrics=EXTRA,
                before=["sdk"],
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stalls")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", metavar="DIR", help="also run the SDK from this checkout")
    arguments = parser.parse_args()
    if arguments.before:
        os.environ[BEFORE_ENV] = os.path.abspath(arguments.before)
    main(quick=arguments.quick)
