"""Launching at scale: `launch_many` versus the same POSTs through raw aiohttp and a semaphore."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import anyio

from transactionlink_async import ApiKey, LaunchRequest, TransactionLink

from ._harness import compare, fake_server

DEFINITION = "bench"


async def _server_stats(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/_fake/stats") as r:
        r.raise_for_status()
        stats: dict[str, Any] = await r.json()
        return stats


def _delta(before: dict[str, Any], after: dict[str, Any], route: str) -> int:
    return int(after["requests"].get(route, 0) - before["requests"].get(route, 0))


def _report(
    before: dict[str, Any], after: dict[str, Any], total: int, ok: int, elapsed: float
) -> dict[str, Any]:
    launched = _delta(before, after, "POST /workflows")
    if ok != total or launched != total:
        raise RuntimeError(f"{ok} of {total} launches succeeded, the server saw {launched}")
    return {
        "rate": total / elapsed,
        "authorize_calls": _delta(before, after, "POST /auth/authorize"),
        # Whole-run peak of the server process (all contenders so far): a bound, not a delta.
        "server_peak_in_flight": after["peak_in_flight"].get("POST /workflows", 0),
    }


async def sdk(
    base_url: str, api_key: str, api_secret: str, total: int, concurrency: int
) -> dict[str, Any]:
    before = await _server_stats(base_url)
    requests = (
        LaunchRequest(workflow_definition_id=DEFINITION, locale="en", parameters={"n": n})
        for n in range(total)
    )
    ok = 0
    async with TransactionLink(ApiKey(api_key, api_secret), base_url=base_url) as tl:
        started = time.perf_counter()
        async for outcome in tl.workflows.launch_many(requests, concurrency=concurrency):
            ok += outcome.ok
        elapsed = time.perf_counter() - started
    result = _report(before, await _server_stats(base_url), total, ok, elapsed)
    if result["authorize_calls"] != 1:
        raise RuntimeError(f"the SDK authorized {result['authorize_calls']} times, not once")
    return result


async def raw_aiohttp(
    base_url: str, api_key: str, api_secret: str, total: int, concurrency: int
) -> dict[str, Any]:
    before = await _server_stats(base_url)
    ok = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        started = time.perf_counter()
        async with session.post(
            f"{base_url}/auth/authorize", json={"key": api_key, "secret": api_secret}
        ) as response:
            response.raise_for_status()
            token = (await response.json())["accessToken"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = f"{base_url}/workflows"
        limiter = anyio.Semaphore(concurrency)

        async def launch(n: int) -> None:
            nonlocal ok
            body = {"workflowDefinitionId": DEFINITION, "locale": "en", "parameters": {"n": n}}
            async with limiter, session.post(url, json=body, headers=headers) as response:
                response.raise_for_status()
                execution = await response.json()
                ok += bool(execution["id"])

        async with anyio.create_task_group() as tg:
            for n in range(total):
                tg.start_soon(launch, n)
        elapsed = time.perf_counter() - started
    return _report(before, await _server_stats(base_url), total, ok, elapsed)


def main(quick: bool = False) -> None:
    total = 1_000 if quick else 10_000
    rounds = 1 if quick else 3
    with fake_server("--journal-limit", "1000") as server:
        kwargs = {
            "base_url": server.base_url,
            "api_key": server.api_key,
            "api_secret": server.api_secret,
            "total": total,
            "concurrency": 100,
        }
        compare(
            "launch_c100",
            {
                "sdk": ("benchmarks.bench_launch:sdk", kwargs),
                "aiohttp": ("benchmarks.bench_launch:raw_aiohttp", kwargs),
            },
            rounds=rounds,
            metric="rate",
            unit="launches/s",
            extra_metrics=("authorize_calls", "server_peak_in_flight", "peak_rss_mib"),
        )
