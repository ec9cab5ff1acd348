"""Scaling out under a shared rate limit: launches from 1 or 4 processes against one limit.

The fake refuses launches beyond R a second (a token bucket of R/10, 429 with Retry-After).
Each worker process runs `launch_many` over its share of the launches with its own client
(API key credentials, tokens renewed during the run):
with `RedisCoordination` (one shared `RateLimit` budget, or only the shared 429 pause),
or without (each process alone). Reported: budget used (accepted launches a second / R,
from the common start to the last accepted launch, and over the second half), the share
of launches answered 429 (429s / launches), failed launches. Run through bench_scaleout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio

from transactionlink_async import (
    ApiKey,
    LaunchRequest,
    RateLimit,
    RetryPolicy,
    TransactionLink,
    TransactionLinkError,
)
from transactionlink_async.coordination import RedisCoordination

from ._harness import PINNING, ROOT, read_report
from ._redis import forget_shared_state

ROUTE = "POST /workflows"
#: Launches in flight over all the processes (each has its share).
CONCURRENCY = 40
#: Attempts per launch: enough to outlast any overload.
ATTEMPTS = 30
#: What the processes' RateLimit is set to, as a share of the fake's R.
LIMIT_SHARE = 0.95


# -- one launcher process -------------------------------------------------------------------


async def _launcher(
    base_url: str,
    key: str,
    secret: str,
    redis_url: str | None,
    limit: float | None,
    concurrency: int,
) -> None:
    """Say ready, read {"n", "start_at"} from stdin, launch n from then on, print what it saw."""
    coordination = RedisCoordination(redis_url) if redis_url else None
    # Coordination falling back to local behaviour (Redis slow or away) logs a warning.
    warnings = WarningCount()
    logging.getLogger("transactionlink_async").addHandler(warnings)
    done: list[float] = []
    failed = 0
    async with TransactionLink(
        ApiKey(key, secret),
        base_url=base_url,
        retry=RetryPolicy(max_attempts=ATTEMPTS),
        rate_limit=None if limit is None else RateLimit(limit),
        coordination=coordination,
    ) as tl:
        # Any call starts the coordination's subscriber: shared pauses reach us from now on.
        with contextlib.suppress(TransactionLinkError):
            await tl.workflows.get("warmup")
        if coordination is not None:
            for _ in range(200):
                if coordination.connected:
                    break
                await anyio.sleep(0.01)
        print(json.dumps({"ready": True}), flush=True)
        order = json.loads(await anyio.to_thread.run_sync(sys.stdin.readline))
        await anyio.sleep(max(0.0, order["start_at"] - time.monotonic()))

        async def requests() -> AsyncIterator[LaunchRequest]:
            for _ in range(order["n"]):
                yield LaunchRequest(workflow_definition_id="bench", locale="en", parameters={})

        async for outcome in tl.workflows.launch_many(requests(), concurrency=concurrency):
            if outcome.ok:
                done.append(time.monotonic())
            else:
                failed += 1
    print(json.dumps({"done": done, "failed": failed, "warnings": warnings.count}), flush=True)


class WarningCount(logging.Handler):
    """Counts the SDK's warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


# -- the contender --------------------------------------------------------------------------


async def _fake(session: aiohttp.ClientSession, url: str, body: Any = None) -> Any:
    method = "GET" if body is None else "POST"
    async with session.request(method, url, json=body) as response:
        response.raise_for_status()
        return await response.json()


async def _spawn(args: list[str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks._scaleout_limits",
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**24,  # one line carries every launch's time
    )
    if PINNING is not None:
        os.sched_setaffinity(process.pid, {PINNING[1]})
    return process


async def limited(
    base_url: str,
    key: str,
    secret: str,
    processes: int,
    redis_url: str | None,
    shared_limit: bool,
    per_second: float,
    delay: float,
    total: int,
) -> dict[str, Any]:
    """`processes` launchers sharing `total` launches against a limit of `per_second`."""
    if redis_url is not None:
        await forget_shared_state(redis_url)
    limit = LIMIT_SHARE * per_second if shared_limit else None
    async with aiohttp.ClientSession() as session:
        # A fresh, full bucket for this contender.
        await _fake(
            session,
            f"{base_url}/_fake/rate_limits",
            {
                "method": "POST",
                "path": "/workflows",
                "per_second": per_second,
                "burst": per_second / 10,
            },
        )
        await _fake(
            session,
            f"{base_url}/_fake/delays",
            {"method": "POST", "path": "/workflows", "seconds": delay},
        )
        before = (await _fake(session, f"{base_url}/_fake/stats"))["answers"].get(ROUTE, {})
        args = [base_url, key, secret, redis_url or "-", "-" if limit is None else repr(limit)]
        args.append(str(CONCURRENCY // processes))
        launchers = [await _spawn(args) for _ in range(processes)]
        try:
            for launcher in launchers:
                await read_report(launcher, "launcher")
            start_at = time.monotonic() + 0.2
            shares = [total // processes + (i < total % processes) for i in range(processes)]
            for launcher, n in zip(launchers, shares, strict=True):
                assert launcher.stdin is not None
                launcher.stdin.write((json.dumps({"n": n, "start_at": start_at}) + "\n").encode())
                await launcher.stdin.drain()
            reports = [await read_report(launcher, "launcher") for launcher in launchers]
        finally:
            for launcher in launchers:
                if launcher.returncode is None:
                    launcher.terminate()
                await launcher.wait()
        after = (await _fake(session, f"{base_url}/_fake/stats"))["answers"].get(ROUTE, {})
    done = sorted(at - start_at for report in reports for at in report["done"])
    return figures(
        per_second=per_second,
        total=total,
        done=done,
        failed=sum(report["failed"] for report in reports),
        answered_429=int(after.get("429", 0) - before.get("429", 0)),
        warnings=sum(report["warnings"] for report in reports),
    )


def figures(
    *,
    per_second: float,
    total: int,
    done: list[float],
    failed: int,
    answered_429: int,
    warnings: int,
) -> dict[str, Any]:
    """`done`: when each accepted launch was answered, seconds from the common start."""
    elapsed = done[-1] if done else float("inf")
    half = done[len(done) // 2 :]
    steady = (len(half) - 1) / (half[-1] - half[0]) if len(half) > 1 else 0.0
    return {
        "budget_used": len(done) / elapsed / per_second,
        "steady_budget_used": steady / per_second,
        "share_429": answered_429 / total,
        "answered_429": answered_429,
        "failed": failed,
        "sdk_warnings": warnings,
        "elapsed_s": elapsed,
    }


METRICS = (
    "steady_budget_used",
    "share_429",
    "answered_429",
    "failed",
    "sdk_warnings",
    "elapsed_s",
)


def contenders(common: dict[str, Any], redis_url: str) -> dict[str, tuple[str, dict[str, Any]]]:
    target = "benchmarks._scaleout_limits:limited"
    alone = {**common, "redis_url": None}
    shared = {**common, "redis_url": redis_url}
    return {
        "1_process_rate_limit": (target, {**alone, "processes": 1, "shared_limit": True}),
        "1_process": (target, {**alone, "processes": 1, "shared_limit": False}),
        "4_processes": (target, {**alone, "processes": 4, "shared_limit": False}),
        "4_processes_redis_rate_limit": (
            target,
            {**shared, "processes": 4, "shared_limit": True},
        ),
        "4_processes_redis": (target, {**shared, "processes": 4, "shared_limit": False}),
    }


if __name__ == "__main__":
    base, api_key, api_secret, redis, rate, in_flight = sys.argv[1:7]
    anyio.run(
        _launcher,
        base,
        api_key,
        api_secret,
        None if redis == "-" else redis,
        None if rate == "-" else float(rate),
        int(in_flight),
    )
