"""Large results: `download_result` and `json_items` versus raw aiohttp, httpx and the naive way.

The fake API and its fake S3 run in their own process and serve a generated JSON result
of the chosen size behind a pre-signed link. Every contender asks `/result` for the link,
fetches it byte for byte and writes it to a file, fsynced at the end (the SDK's atomic
write does, so the raw ones do too). Two rates: `transfer` until the last byte is in the
file, `durable` until it is on disk. The SDK checks the MD5 by default (the fake's ETag
is a plain MD5); `sdk_no_md5` and `aiohttp_md5` show what that costs on either side.
Run alone with sizes of your choice (the suite runs 1 GiB, and all three with --scaling):

    python -m benchmarks.bench_download --sizes 64M,256M,1G --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yarl

from transactionlink_async import OrganizationToken, TransactionLink

from ._harness import BEFORE_ENV, compare, every_cpu, fake_server

MiB = 1024 * 1024
_CHUNK = MiB
# The naive contender holds the whole body and its parsed form: kept to sizes that fit.
NAIVE_MAX = 256 * MiB


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-download-"))


def _finish(path: Path, size: int, started: float, written: float, cpu: float) -> dict[str, Any]:
    durable = time.perf_counter()
    cpu = time.process_time() - cpu
    assert path.stat().st_size == size, f"wrote {path.stat().st_size} of {size} bytes"
    path.unlink()
    path.parent.rmdir()
    return {
        "transfer_mib_s": size / MiB / (written - started),
        "durable_mib_s": size / MiB / (durable - started),
        # What the client's own work costs, whatever the server's pace: MiB per CPU second.
        "mib_per_cpu_s": size / MiB / cpu,
    }


def _fsync(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


async def sdk(
    base_url: str, token: str, execution_id: str, size: int, verify_md5: bool = True
) -> dict[str, Any]:
    path = _folder() / "result.json"
    written = 0.0

    def progress(done: int, total: int | None) -> None:
        nonlocal written
        if done == size:
            written = time.perf_counter()

    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:
        started, cpu = time.perf_counter(), time.process_time()
        result = await tl.workflows.download_result(
            execution_id, path, on_progress=progress, verify_md5=verify_md5
        )
        outcome = _finish(path, size, started, written, cpu)
    assert result.md5_verified is verify_md5
    return outcome


async def _link(session: aiohttp.ClientSession, base_url: str, token: str, eid: str) -> str:
    url = f"{base_url}/workflows/{eid}/result"
    async with session.get(url, headers={"Authorization": token}) as response:
        response.raise_for_status()
        link: str = (await response.json())["$redirect"]
    return link


async def raw_aiohttp(
    base_url: str, token: str, execution_id: str, size: int, md5: bool = False
) -> dict[str, Any]:
    """What a careful script does: exact URL, no credentials, chunks to a temporary file
    (and its MD5, inline), fsync, rename into place."""
    path = _folder() / "result.json"
    partial = path.with_name(".result.json.part")
    digest = hashlib.md5(usedforsecurity=False)
    async with aiohttp.ClientSession() as api, aiohttp.ClientSession() as s3:
        started, cpu = time.perf_counter(), time.process_time()
        link = await _link(api, base_url, token, execution_id)
        async with s3.get(yarl.URL(link, encoded=True)) as response:
            response.raise_for_status()
            with partial.open("wb") as handle:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    handle.write(chunk)
                    if md5:
                        digest.update(chunk)
                written = time.perf_counter()
                _fsync(handle)
        if md5:
            assert f'"{digest.hexdigest()}"' == response.headers["ETag"]
        os.replace(partial, path)
    return _finish(path, size, started, written, cpu)


async def raw_httpx(base_url: str, token: str, execution_id: str, size: int) -> dict[str, Any]:
    path = _folder() / "result.json"
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        started, cpu = time.perf_counter(), time.process_time()
        answer = await client.get(
            f"{base_url}/workflows/{execution_id}/result", headers={"Authorization": token}
        )
        answer.raise_for_status()
        async with client.stream("GET", answer.json()["$redirect"]) as response:
            response.raise_for_status()
            with path.open("wb") as handle:
                async for chunk in response.aiter_bytes(_CHUNK):
                    handle.write(chunk)
                written = time.perf_counter()
                _fsync(handle)
    return _finish(path, size, started, written, cpu)


async def naive_json(base_url: str, token: str, execution_id: str, size: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        link = await _link(session, base_url, token, execution_id)
        async with session.get(yarl.URL(link, encoded=True)) as response:
            response.raise_for_status()
            # S3 labels it binary/octet-stream, so .json() must be told not to check.
            document = await response.json(content_type=None)
        elapsed = time.perf_counter() - started
    assert document["records"]
    return {"transfer_mib_s": size / MiB / elapsed, "durable_mib_s": size / MiB / elapsed}


async def md5_single_core(
    base_url: str, token: str, execution_id: str, size: int
) -> dict[str, Any]:
    """MD5 alone over `size` bytes in memory, on one core: the rate no verified download
    can beat, however fast the link."""
    block = os.urandom(4 * MiB)
    digest = hashlib.md5(usedforsecurity=False)
    started = time.perf_counter()
    for _ in range(max(1, size // len(block))):
        digest.update(block)
    rate = max(1, size // len(block)) * len(block) / MiB / (time.perf_counter() - started)
    return {"transfer_mib_s": rate, "durable_mib_s": rate}


async def sdk_items(base_url: str, token: str, execution_id: str, items: int) -> dict[str, Any]:
    count = 0
    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:
        started = time.perf_counter()
        async with tl.workflows.stream_result(execution_id) as stream:
            async for _ in stream.json_items("records.item"):
                count += 1
        elapsed = time.perf_counter() - started
    assert count == items, (count, items)
    return {"items_s": count / elapsed, "seconds": elapsed}


async def raw_ijson(base_url: str, token: str, execution_id: str, items: int) -> dict[str, Any]:
    import ijson

    backend = ijson.get_backend("yajl2_c")
    count = 0
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        link = await _link(session, base_url, token, execution_id)
        async with session.get(yarl.URL(link, encoded=True)) as response:
            response.raise_for_status()
            async for _ in backend.items_async(response.content, "records.item"):
                count += 1
        elapsed = time.perf_counter() - started
    assert count == items, (count, items)
    return {"items_s": count / elapsed, "seconds": elapsed}


def _label(size: int) -> str:
    return f"{size // (1024 * MiB)}g" if size % (1024 * MiB) == 0 else f"{size // MiB}m"


def run(sizes: Sequence[int], *, rounds: int, items: bool = True, others: bool = True) -> None:
    for size in sizes:
        with fake_server("--large-result-bytes", str(size), "--journal-limit", "1000") as server:
            kwargs = {
                "base_url": server.base_url,
                "token": server.org_token,
                "execution_id": server.raw["large_result_id"],
                "size": size,
            }
            contenders = {
                "sdk": ("benchmarks.bench_download:sdk", kwargs),
                "sdk_no_md5": ("benchmarks.bench_download:sdk", {**kwargs, "verify_md5": False}),
                "aiohttp": ("benchmarks.bench_download:raw_aiohttp", kwargs),
                "aiohttp_md5": ("benchmarks.bench_download:raw_aiohttp", {**kwargs, "md5": True}),
            }
            if others:
                contenders["httpx"] = ("benchmarks.bench_download:raw_httpx", kwargs)
                if size <= NAIVE_MAX:
                    contenders["naive_json"] = ("benchmarks.bench_download:naive_json", kwargs)
            compare(
                f"download_{_label(size)}",
                contenders,
                rounds=rounds,
                metric="transfer_mib_s",
                unit="MiB/s",
                extra_metrics=("durable_mib_s", "mib_per_cpu_s"),
                before=["sdk", "sdk_no_md5"],
            )
            if items and size == max(sizes):
                _items(server.raw, kwargs, size, rounds)


def two_cores(size: int, *, rounds: int) -> None:
    """A verified download with a core to spare against its physical limit: the slower of
    MD5 on one core and the same download unverified (the server keeps its own core)."""
    with fake_server("--large-result-bytes", str(size), "--journal-limit", "1000") as server:
        kwargs = {
            "base_url": server.base_url,
            "token": server.org_token,
            "execution_id": server.raw["large_result_id"],
            "size": size,
        }
        with every_cpu():
            compare(
                f"download_{_label(size)}_two_cores",
                {
                    "sdk": ("benchmarks.bench_download:sdk", kwargs),
                    "sdk_no_md5": (
                        "benchmarks.bench_download:sdk",
                        {**kwargs, "verify_md5": False},
                    ),
                    "md5_single_core": ("benchmarks.bench_download:md5_single_core", kwargs),
                },
                rounds=rounds,
                metric="transfer_mib_s",
                unit="MiB/s",
                extra_metrics=("mib_per_cpu_s",),
                before=["sdk"],
            )


def _items(raw: dict[str, Any], kwargs: dict[str, Any], size: int, rounds: int) -> None:
    item_kwargs = {**kwargs, "items": raw["large_result_items"]}
    del item_kwargs["size"]
    compare(
        f"json_items_{_label(size)}",
        {
            "sdk": ("benchmarks.bench_download:sdk_items", item_kwargs),
            "aiohttp+ijson": ("benchmarks.bench_download:raw_ijson", item_kwargs),
        },
        rounds=rounds,
        metric="items_s",
        unit="items/s",
        extra_metrics=("seconds",),
    )


def items(size: int, *, rounds: int) -> None:
    """json_items alone, on a result of `size` bytes."""
    with fake_server("--large-result-bytes", str(size), "--journal-limit", "1000") as server:
        kwargs = {
            "base_url": server.base_url,
            "token": server.org_token,
            "execution_id": server.raw["large_result_id"],
            "size": size,
        }
        _items(server.raw, kwargs, size, rounds)


def main(quick: bool = False) -> None:
    if quick:
        run([64 * MiB], rounds=1)
    else:
        # The suite's run: the 1 GiB download, and record-by-record parsing of 256 MiB
        # (1 GiB of it takes 20 s a run: that one is in the scaling runs).
        run([1024 * MiB], rounds=3, items=False)
        items(256 * MiB, rounds=3)


def scaling() -> None:
    """64 MiB, 256 MiB and 1 GiB: time linear in bytes, memory flat."""
    run([64 * MiB, 256 * MiB, 1024 * MiB], rounds=3)


def _size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    text = text.strip().upper()
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_download")
    parser.add_argument("--sizes", default="64M,256M,1G", help="comma-separated, e.g. 64M,1G")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-items", action="store_true", help="skip the json_items runs")
    parser.add_argument("--no-others", action="store_true", help="skip httpx and naive json")
    parser.add_argument("--two-cores", action="store_true", help="only the two-core run")
    parser.add_argument("--before", metavar="DIR", help="also run the SDK from this checkout")
    arguments = parser.parse_args()
    if arguments.before:
        os.environ[BEFORE_ENV] = os.path.abspath(arguments.before)
    sizes = [_size(s) for s in arguments.sizes.split(",")]
    if arguments.two_cores:
        for size in sizes:
            two_cores(size, rounds=arguments.rounds)
    else:
        run(
            sizes,
            rounds=arguments.rounds,
            items=not arguments.no_items,
            others=not arguments.no_others,
        )
