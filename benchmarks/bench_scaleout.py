"""Scaling out: 1 and 4 worker processes, each with its own client, with and without Redis.

The fake server runs in its own process with short-lived access tokens; the workers
authenticate with an API key. Each worker waits for its share of executions that finish
at random within a window, keeps a trickle of other calls going, and receives webhook
deliveries: a load balancer in front of them (as uvicorn --workers or gunicorn would)
hands each delivery to one worker picked at random, so with 4 workers most deliveries
land on a worker other than the one waiting. Measured: authorizes and token renewals
(per token lifetime), and for the waits whose delivery landed on another worker (every
wait, with one worker) the delay from the execution finishing (server clock) to its wait
returning (worker clock; both are CLOCK_MONOTONIC of one machine). One contender runs
with Redis stopped: every call must still succeed.

Executions finish from SETTLE seconds after their launch on: the first second of a run is
the benchmark's own start-up burst (its 120 launches, every wait's first poll due at
once, the first delivery fetching the signing key in each worker), on the one core the
workers, the balancer and the launcher share; finishes inside it measured that burst,
not the wake path. So that a tail can be told apart, each run also reports when the
deliveries reached the balancer and were handled by a worker (both from the finish), and
the event-loop lag of the workers.

A second table (`_scaleout_limits`) launches from 1 and 4 processes under one rate limit
of the fake: budget used and share answered 429, with a `RateLimit` shared through Redis,
with only the shared 429 pause, and without Redis.

    python -m benchmarks.bench_scaleout --waits 80 --window 10 --rounds 1 [--only waits]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import statistics
import sys
import time
from typing import Any

import aiohttp
import anyio
from aiohttp import web

from transactionlink_async import ApiKey, TransactionLink, TransactionLinkError
from transactionlink_async.coordination import RedisCoordination
from transactionlink_async.webhooks import aiohttp_handler

from . import _scaleout_limits as limits
from ._harness import PINNING, ROOT, compare, fake_server, read_report
from ._lag import LagProbe
from ._redis import forget_shared_state, free_port, redis_server

DEFINITION = "bench-scaleout"
#: Seconds an access token lives: several renewals within one run.
TOKEN_LIFETIME = 6.0
#: Each worker's trickle of other calls (seconds between two).
TRAFFIC_EVERY = 0.1
#: The fake's launch limit in the rate-limit table (a second), and its answer delay.
LIMIT_RATE = 100.0
LIMIT_DELAY = 0.05
#: Seconds after its launch before an execution may finish (see the module docstring).
SETTLE = 2.0
#: Header the balancer adds to each delivery it forwards: the execution it is about, so
#: the receiving worker can time it without reading the body before the SDK does.
EXECUTION_HEADER = "X-Bench-Execution"


# -- one worker process ---------------------------------------------------------------------


async def _worker(base_url: str, key: str, secret: str, redis_url: str | None) -> None:
    """Print the webhook URL, read the ids to wait on from stdin, wait, print what it saw."""
    coordination = RedisCoordination(redis_url, timeout=0.25) if redis_url else None
    warnings = _WarningCount()
    logging.getLogger("transactionlink_async").addHandler(warnings)
    returned: dict[str, float] = {}
    handled: dict[str, float] = {}
    errors: list[str] = []
    calls = 0

    @web.middleware
    async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        execution_id = request.headers.get(EXECUTION_HEADER)
        if execution_id:
            handled.setdefault(execution_id, time.monotonic())
        return response

    async with TransactionLink(
        ApiKey(key, secret), base_url=base_url, coordination=coordination
    ) as tl:
        app = web.Application(middlewares=[timed])
        app.router.add_post("/hooks", aiohttp_handler(tl))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        # The first call authorizes (or adopts the shared token) before timing starts.
        with contextlib.suppress(TransactionLinkError):
            await tl.workflows.get("warmup")
        if coordination is not None:
            # Subscribed before deliveries start; a stopped Redis is given up on quickly
            # (waiting longer would shift this worker's renewals against the others').
            for _ in range(100):
                if coordination.connected:
                    break
                await anyio.sleep(0.01)
        print(json.dumps({"hook": f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"}))
        sys.stdout.flush()
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        order = json.loads(line)
        ids: list[str] = order["ids"]
        until = time.monotonic() + order["run_s"]
        cpu = time.process_time()

        async def wait(execution_id: str) -> None:
            try:
                await tl.workflows.wait_for_completion(execution_id, timeout=120)
            except TransactionLinkError as exc:
                errors.append(type(exc).__name__)
            else:
                returned[execution_id] = time.monotonic()

        async def traffic() -> None:
            nonlocal calls
            probe = ids[0] if ids else "warmup"
            while time.monotonic() < until:
                try:
                    await tl.workflows.get(probe)
                    calls += 1
                except TransactionLinkError as exc:
                    errors.append(type(exc).__name__)
                await anyio.sleep(TRAFFIC_EVERY)

        # Every 5 ms: often enough to see a stall, rarely enough to cost little CPU.
        async with LagProbe(interval=0.005) as lag, anyio.create_task_group() as tg:
            tg.start_soon(traffic)
            for execution_id in ids:
                tg.start_soon(wait, execution_id)
        cpu = time.process_time() - cpu
        await runner.cleanup()
    print(
        json.dumps(
            {
                "returned": returned,
                "handled": handled,
                "lag_max_ms": lag.figures()["lag_max_ms"],
                "lag_p99_ms": lag.figures()["lag_p99_ms"],
                "errors": errors,
                "calls": calls,
                "cpu_s": cpu,
                "warnings": warnings.count,
            }
        )
    )


class _WarningCount(logging.Handler):
    """Counts the SDK's warnings (coordination falling back to local behaviour logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


# -- the load balancer in front of the workers' receivers ----------------------------------


class Balancer:
    """Hands each delivery to one receiver at random; remembers which got which execution."""

    def __init__(self, seed: int) -> None:
        self.backends: list[str] = []
        self.landed: dict[str, int] = {}
        #: When the first delivery of each execution reached the balancer.
        self.arrived: dict[str, float] = {}
        self._random = random.Random(seed)
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = await request.read()
        index = self._random.randrange(len(self.backends))
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        with contextlib.suppress(ValueError, KeyError, TypeError):
            execution_id = str(json.loads(body)["workflowId"])
            self.landed.setdefault(execution_id, index)
            self.arrived.setdefault(execution_id, arrived)
            headers[EXECUTION_HEADER] = execution_id
        assert self._session is not None
        async with self._session.post(self.backends[index], data=body, headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    @contextlib.asynccontextmanager
    async def serving(self) -> Any:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
        finally:
            await runner.cleanup()
            await self._session.close()


_FORWARDED = {"content-type", "jws-signature"}


# -- one contender: W workers, with or without Redis ----------------------------------------


async def _fake(session: aiohttp.ClientSession, base_url: str, path: str, body: Any = None) -> Any:
    method = "GET" if body is None else "POST"
    async with session.request(method, f"{base_url}/_fake/{path}", json=body) as response:
        response.raise_for_status()
        return await response.json()


async def _launch(session: aiohttp.ClientSession, base_url: str, token: str, n: int) -> list[str]:
    body = {"workflowDefinitionId": DEFINITION, "locale": "en", "parameters": {}}
    ids: list[str] = []

    async def one() -> None:
        async with session.post(
            f"{base_url}/workflows", json=body, headers={"Authorization": token}
        ) as response:
            response.raise_for_status()
            ids.append((await response.json())["id"])

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return ids


async def _spawn(args: list[str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.bench_scaleout",
        "worker",
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    if PINNING is not None:
        os.sched_setaffinity(process.pid, {PINNING[1]})
    return process


async def contender(
    base_url: str,
    token: str,
    key: str,
    secret: str,
    workers: int,
    redis_url: str | None,
    waits: int,
    window: float,
    seed: int,
) -> dict[str, Any]:
    """Run `workers` worker processes through one window of finishing executions."""
    if redis_url is not None:
        await forget_shared_state(redis_url)
    balancer = Balancer(seed)
    async with aiohttp.ClientSession() as session, balancer.serving() as entry:
        before = (await _fake(session, base_url, "stats"))["requests"]
        processes = [
            await _spawn([base_url, key, secret, redis_url or "-"]) for _ in range(workers)
        ]
        try:
            balancer.backends = [(await read_report(p, "worker"))["hook"] for p in processes]
            # Every worker has its first token: renewals count from here, authorizes from
            # before the workers started.
            ready = (await _fake(session, base_url, "stats"))["requests"]
            await _fake(session, base_url, "webhooks/subscribe", {"url": entry})
            await _fake(
                session,
                base_url,
                f"workflows/{DEFINITION}",
                {"statuses": ["RUNNING", "COMPLETED"], "finish_between": [SETTLE, window]},
            )
            started = time.monotonic()
            ids = await _launch(session, base_url, token, waits)
            shares = [ids[i::workers] for i in range(workers)]
            for process, share in zip(processes, shares, strict=True):
                assert process.stdin is not None
                order = {"ids": share, "run_s": window + 1}
                process.stdin.write((json.dumps(order) + "\n").encode())
                await process.stdin.drain()
            reports = [await read_report(p, "worker") for p in processes]
            run_s = time.monotonic() - started
        finally:
            await _fake(session, base_url, "webhooks/unsubscribe", {"url": entry})
            for process in processes:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.terminate()
                await process.wait()
        finishes: dict[str, float] = (await _fake(session, base_url, "finishes"))["finishes"]
        after = (await _fake(session, base_url, "stats"))["requests"]
    return _figures(
        reports,
        shares,
        balancer,
        finishes,
        (before, ready, after),
        run_s=run_s,
        waits=waits,
    )


def _figures(
    reports: list[dict[str, Any]],
    shares: list[list[str]],
    balancer: Balancer,
    finishes: dict[str, float],
    stats: tuple[dict[str, int], dict[str, int], dict[str, int]],
    *,
    run_s: float,
    waits: int,
) -> dict[str, Any]:
    landed = balancer.landed
    handled = {i: at for report in reports for i, at in report["handled"].items()}
    elsewhere: list[float] = []
    everywhere: list[float] = []
    # For the same waits: finish to delivery at the balancer, and to handled by a worker.
    delivered: list[float] = []
    received: list[float] = []
    returned = 0
    for index, (report, share) in enumerate(zip(reports, shares, strict=True)):
        for execution_id in share:
            at = report["returned"].get(execution_id)
            if at is None:
                continue
            returned += 1
            finished = finishes[execution_id]
            delay = at - finished
            everywhere.append(delay)
            # With one worker every delivery lands on the waiting worker: all waits count.
            if len(reports) == 1 or landed.get(execution_id, index) != index:
                elsewhere.append(delay)
                if execution_id in balancer.arrived:
                    delivered.append(balancer.arrived[execution_id] - finished)
                if execution_id in handled:
                    received.append(handled[execution_id] - finished)

    before, ready, after = stats

    def delta(route: str, since: dict[str, int]) -> int:
        return int(after.get(route, 0) - since.get(route, 0))

    refreshes = delta("POST /auth/refresh", ready)
    errors = sum(len(r["errors"]) for r in reports)
    return {
        "waits": waits,
        "waits_returned": returned,
        "calls": sum(r["calls"] for r in reports) + returned,
        "calls_failed": errors,
        "sdk_warnings": sum(r["warnings"] for r in reports),
        "authorizes": delta("POST /auth/authorize", before),
        "refreshes": refreshes,
        "renewals_per_token_lifetime": refreshes / (run_s / TOKEN_LIFETIME),
        "landed_elsewhere": len(elsewhere),
        "finish_to_return_median_s": _quantile(elsewhere, 0.5),
        "finish_to_return_p90_s": _quantile(elsewhere, 0.9),
        "finish_to_return_p99_s": _quantile(elsewhere, 0.99),
        "all_waits_median_s": _quantile(everywhere, 0.5),
        "delivered_p99_s": _quantile(delivered, 0.99),
        "handled_p99_s": _quantile(received, 0.99),
        "worker_lag_max_ms": max(r["lag_max_ms"] for r in reports),
        "worker_lag_p99_ms": max(r["lag_p99_ms"] for r in reports),
        "worker_cpu_s": sum(r["cpu_s"] for r in reports),
        "run_s": run_s,
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if q == 0.5:
        return statistics.median(ordered)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


METRICS = (
    "finish_to_return_p90_s",
    "finish_to_return_p99_s",
    "delivered_p99_s",
    "handled_p99_s",
    "worker_lag_max_ms",
    "worker_lag_p99_ms",
    "all_waits_median_s",
    "landed_elsewhere",
    "authorizes",
    "refreshes",
    "renewals_per_token_lifetime",
    "calls",
    "calls_failed",
    "sdk_warnings",
    "waits_returned",
)


def run(*, waits: int, window: float, rounds: int) -> None:
    with (
        fake_server(
            "--access-token-lifetime", str(TOKEN_LIFETIME), "--journal-limit", "2000"
        ) as server,
        redis_server() as redis_url,
    ):
        # A port where nothing listens: Redis "stopped" for the whole run.
        down = f"redis://127.0.0.1:{free_port()}/0"
        common = {
            "base_url": server.base_url,
            "token": server.org_token,
            "key": server.api_key,
            "secret": server.api_secret,
            "waits": waits,
            "window": window,
            "seed": 7,
        }
        target = "benchmarks.bench_scaleout:contender"
        compare(
            f"scaleout_{waits}",
            {
                "1_worker": (target, {**common, "workers": 1, "redis_url": None}),
                "4_workers": (target, {**common, "workers": 4, "redis_url": None}),
                "4_workers_redis": (target, {**common, "workers": 4, "redis_url": redis_url}),
                "4_workers_redis_down": (target, {**common, "workers": 4, "redis_url": down}),
            },
            rounds=rounds,
            metric="finish_to_return_median_s",
            unit="s",
            higher_is_better=False,
            baseline="4_workers_redis",
            extra_metrics=METRICS,
        )


def run_limits(*, per_second: float, seconds: float, rounds: int) -> None:
    """The launches of 1 and 4 processes against one rate limit (see _scaleout_limits)."""
    with (
        fake_server(
            "--access-token-lifetime", str(TOKEN_LIFETIME), "--journal-limit", "1000"
        ) as server,
        redis_server() as redis_url,
    ):
        common = {
            "base_url": server.base_url,
            "key": server.api_key,
            "secret": server.api_secret,
            "per_second": per_second,
            "delay": LIMIT_DELAY,
            "total": int(per_second * seconds),
        }
        compare(
            f"scaleout_ratelimit_r{per_second:g}",
            limits.contenders(common, redis_url),
            rounds=rounds,
            metric="budget_used",
            unit="of R",
            baseline="4_processes_redis_rate_limit",
            extra_metrics=limits.METRICS,
        )


def main(quick: bool = False) -> None:
    if quick:
        run(waits=40, window=6.0, rounds=1)
        run_limits(per_second=LIMIT_RATE, seconds=5, rounds=1)
    else:
        run(waits=120, window=12.0, rounds=1)
        run_limits(per_second=LIMIT_RATE, seconds=20, rounds=1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        base_url, key, secret, redis_url = sys.argv[2:6]
        anyio.run(_worker, base_url, key, secret, None if redis_url == "-" else redis_url)
        sys.exit(0)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scaleout")
    parser.add_argument("--waits", type=int, default=120)
    parser.add_argument("--window", type=float, default=12.0, help="seconds (default 12)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="launches = R x this")
    parser.add_argument("--only", choices=("waits", "limits"), help="one of the two tables")
    arguments = parser.parse_args()
    if arguments.only != "limits":
        run(waits=arguments.waits, window=arguments.window, rounds=arguments.rounds)
    if arguments.only != "waits":
        run_limits(per_second=LIMIT_RATE, seconds=arguments.seconds, rounds=arguments.rounds)
