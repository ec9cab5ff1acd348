"""Rate limits: launches against a fake that refuses beyond R a second (429 + Retry-After).

Two scenarios, each cell against its own `python -m transactionlink_async.testing serve`
process, its rate limit (a token bucket) and answer delay set through `/_fake/...`:

- launch: `launch_many` (40 in flight) against R = 100 and 200 launches a second, the API
  answering in 1 ms and in 100 ms; `burst` is a tenth of a second of R, and a refusal
  carries `Retry-After: 1`. Contenders: the SDK learning the limit on its own; the SDK
  told it (`RateLimit(0.95 R)`); a plain aiohttp loop with a semaphore that sleeps each
  Retry-After and retries.
- initialise: 150 `initialise` calls from concurrent tasks, offered at 25 a second
  against a limit of 10 a second (burst 5, `Retry-After: 1`), every contender allowed
  30 attempts per call.

Reported: budget used (accepted launches a second / R, over the whole run, and over its
second half once the limit is found), share of requests answered 429 (429s / launches),
failed launches, p95 latency of a launch (first attempt to outcome). Run alone:

    python -m benchmarks.bench_ratelimit --rounds 1 --seconds 30
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import anyio

from transactionlink_async import (
    LaunchRequest,
    OrganizationToken,
    RateLimit,
    RetryPolicy,
    TransactionLink,
)

from ._harness import compare, fake_server

CONCURRENCY = 40
ROUTE = "POST /workflows"
#: Attempts per launch for every contender: enough to outlast the overload.
ATTEMPTS = 30
BODY = {"workflowDefinitionId": "bench", "locale": "en", "parameters": {}}


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        return await response.json()


async def _setup(base_url: str, per_second: float, burst: float, delay: float) -> dict[str, Any]:
    """A fresh (full) bucket and the answer delay; the server's counts before the run."""
    async with aiohttp.ClientSession() as session:
        await _post(
            session,
            f"{base_url}/_fake/rate_limits",
            {"method": "POST", "path": "/workflows", "per_second": per_second, "burst": burst},
        )
        await _post(
            session,
            f"{base_url}/_fake/delays",
            {"method": "POST", "path": "/workflows", "seconds": delay},
        )
        async with session.get(f"{base_url}/_fake/stats") as response:
            stats: dict[str, Any] = await response.json()
            return stats


async def _answers(base_url: str, before: dict[str, Any]) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/_fake/stats") as r:
        after = (await r.json())["answers"].get(ROUTE, {})
    earlier = before["answers"].get(ROUTE, {})
    return {status: after[status] - earlier.get(status, 0) for status in after}


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0


def _report(
    *,
    per_second: float,
    total: int,
    done: list[float],
    latencies: list[float],
    failed: int,
    answers: dict[str, int],
) -> dict[str, Any]:
    """`done`: when each accepted launch finished, seconds from the start."""
    done = sorted(done)
    elapsed = done[-1] if done else math.inf
    half = done[len(done) // 2 :]
    steady = (len(half) - 1) / (half[-1] - half[0]) if len(half) > 1 else 0.0
    return {
        "budget_used": len(done) / elapsed / per_second,
        "steady_budget_used": steady / per_second,
        "share_429": answers.get("429", 0) / total,
        "answered_429": answers.get("429", 0),
        "failed": failed,
        "p95_latency_s": _p95(latencies),
        "elapsed_s": elapsed,
    }


# -- the contenders ------------------------------------------------------------------------


async def sdk(
    base_url: str,
    token: str,
    per_second: float,
    burst: float,
    delay: float,
    total: int,
    known_limit: float | None = None,
) -> dict[str, Any]:
    before = await _setup(base_url, per_second, burst, delay)
    asked: dict[int, float] = {}

    async def requests() -> AsyncIterator[LaunchRequest]:
        for n in range(total):
            asked[n] = time.perf_counter()  # read lazily: when its slot is free
            yield LaunchRequest(workflow_definition_id="bench", locale="en", parameters={})

    done: list[float] = []
    latencies: list[float] = []
    failed = 0
    limit = None if known_limit is None else RateLimit(known_limit)
    retry = RetryPolicy(max_attempts=ATTEMPTS)
    async with TransactionLink(
        OrganizationToken(token), base_url=base_url, retry=retry, rate_limit=limit
    ) as tl:
        started = time.perf_counter()
        async for outcome in tl.workflows.launch_many(requests(), concurrency=CONCURRENCY):
            now = time.perf_counter()
            latencies.append(now - asked[outcome.index])
            if outcome.ok:
                done.append(now - started)
            else:
                failed += 1
    return _report(
        per_second=per_second,
        total=total,
        done=done,
        latencies=latencies,
        failed=failed,
        answers=await _answers(base_url, before),
    )


async def sdk_rate_limit(**kwargs: Any) -> dict[str, Any]:
    """The SDK told the limit: RateLimit at 95 % of it."""
    return await sdk(**kwargs, known_limit=0.95 * kwargs["per_second"])


async def _naive_launch(session: aiohttp.ClientSession, url: str, limiter: anyio.Semaphore) -> bool:
    """What one would write by hand: on 429, sleep its Retry-After and try again."""
    async with limiter:
        for _ in range(ATTEMPTS):
            async with session.post(url, json=BODY) as response:
                await response.read()
                if response.status != 429:
                    return response.status == 200
                retry_after = float(response.headers.get("Retry-After", "1"))
            await anyio.sleep(retry_after)
    return False


async def raw_aiohttp(
    base_url: str, token: str, per_second: float, burst: float, delay: float, total: int
) -> dict[str, Any]:
    before = await _setup(base_url, per_second, burst, delay)
    done: list[float] = []
    latencies: list[float] = []
    failed = 0
    headers = {"Authorization": token, "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        limiter = anyio.Semaphore(CONCURRENCY)
        url = f"{base_url}/workflows"
        started = time.perf_counter()

        async def one() -> None:
            nonlocal failed
            asked = time.perf_counter()
            ok = await _naive_launch(session, url, limiter)
            now = time.perf_counter()
            latencies.append(now - asked)
            if ok:
                done.append(now - started)
            else:
                failed += 1

        async with anyio.create_task_group() as tg:
            for _ in range(total):
                tg.start_soon(one)
    return _report(
        per_second=per_second,
        total=total,
        done=done,
        latencies=latencies,
        failed=failed,
        answers=await _answers(base_url, before),
    )


async def _offer(total: int, per_second: float, call: Any) -> tuple[list[float], list[float]]:
    """`call()` from `total` concurrent tasks started `per_second` a second."""
    done: list[float] = []
    latencies: list[float] = []
    started = time.perf_counter()

    async def one() -> None:
        asked = time.perf_counter()
        if await call():
            now = time.perf_counter()
            done.append(now - started)
            latencies.append(now - asked)

    async with anyio.create_task_group() as tg:
        for _ in range(total):
            tg.start_soon(one)
            await anyio.sleep(1 / per_second)
    return done, latencies


async def sdk_initialise(
    base_url: str,
    token: str,
    per_second: float,
    burst: float,
    offered: float,
    total: int,
    known_limit: float | None = None,
) -> dict[str, Any]:
    before = await _setup(base_url, per_second, burst, 0.0)
    limit = None if known_limit is None else RateLimit(known_limit)
    retry = RetryPolicy(max_attempts=ATTEMPTS)
    async with TransactionLink(
        OrganizationToken(token), base_url=base_url, retry=retry, rate_limit=limit
    ) as tl:

        async def call() -> bool:
            try:
                await tl.workflows.initialise(
                    workflow_definition_id="bench", locale="en", parameters={}
                )
            except Exception:
                return False
            return True

        done, latencies = await _offer(total, offered, call)
    return _report(
        per_second=per_second,
        total=total,
        done=done,
        latencies=latencies,
        failed=total - len(done),
        answers=await _answers(base_url, before),
    )


async def sdk_initialise_rate_limit(**kwargs: Any) -> dict[str, Any]:
    return await sdk_initialise(**kwargs, known_limit=0.95 * kwargs["per_second"])


async def raw_aiohttp_initialise(
    base_url: str, token: str, per_second: float, burst: float, offered: float, total: int
) -> dict[str, Any]:
    before = await _setup(base_url, per_second, burst, 0.0)
    headers = {"Authorization": token, "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        limiter = anyio.Semaphore(total)
        url = f"{base_url}/workflows"
        done, latencies = await _offer(total, offered, lambda: _naive_launch(session, url, limiter))
    return _report(
        per_second=per_second,
        total=total,
        done=done,
        latencies=latencies,
        failed=total - len(done),
        answers=await _answers(base_url, before),
    )


# -- the runs ------------------------------------------------------------------------------

METRICS = (
    "steady_budget_used",
    "share_429",
    "answered_429",
    "failed",
    "p95_latency_s",
    "elapsed_s",
)


def run(rounds: int, seconds: float) -> None:
    for per_second in (100, 200):
        for delay in (0.001, 0.1):
            # A fake of its own per cell: one that kept every earlier cell's executions
            # stalls for tens of ms in full collections, and a stalled server reads
            # requests sent evenly as a burst (429s a real API would not answer).
            with fake_server("--journal-limit", "1000") as server:
                kwargs = {
                    "base_url": server.base_url,
                    "token": server.org_token,
                    "per_second": per_second,
                    "burst": per_second / 10,
                    "delay": delay,
                    "total": int(per_second * seconds),
                }
                compare(
                    f"ratelimit_r{per_second}_d{delay * 1000:.0f}ms",
                    {
                        "sdk": ("benchmarks.bench_ratelimit:sdk", kwargs),
                        "sdk_rate_limit": ("benchmarks.bench_ratelimit:sdk_rate_limit", kwargs),
                        "aiohttp": ("benchmarks.bench_ratelimit:raw_aiohttp", kwargs),
                    },
                    rounds=rounds,
                    metric="budget_used",
                    unit="of R",
                    extra_metrics=METRICS,
                )
    with fake_server("--journal-limit", "1000") as server:
        kwargs = {
            "base_url": server.base_url,
            "token": server.org_token,
            "per_second": 10,
            "burst": 5,
            "offered": 25,
            "total": 150,
        }
        compare(
            "ratelimit_initialise_150",
            {
                "sdk": ("benchmarks.bench_ratelimit:sdk_initialise", kwargs),
                "sdk_rate_limit": (
                    "benchmarks.bench_ratelimit:sdk_initialise_rate_limit",
                    kwargs,
                ),
                "aiohttp": ("benchmarks.bench_ratelimit:raw_aiohttp_initialise", kwargs),
            },
            rounds=rounds,
            metric="budget_used",
            unit="of R",
            extra_metrics=METRICS,
        )


def main(quick: bool = False) -> None:
    run(rounds=1, seconds=5 if quick else 30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_ratelimit")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0, help="launches = R x this")
    args = parser.parse_args()
    run(args.rounds, args.seconds)
