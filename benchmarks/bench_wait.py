"""Waiting at scale: N concurrent `wait_for_completion`, by polling alone and with webhooks,
versus a naive fixed-interval poller written with raw aiohttp.

The fake server (its own process) draws a finishing moment for each execution, uniform
within the window. Each contender launches its own N executions (not measured), then
waits for all of them. Measured: requests per execution (the server's count of
`GET /workflows/{id}`), the client's CPU during the waits, and the delay between an
execution finishing (on the server's clock) and its waiter returning (client clock; both
are CLOCK_MONOTONIC of the same machine). Run alone with sizes of your choice:

    python -m benchmarks.bench_wait --waits 1000 --wait-window 60 --rounds 1
    python -m benchmarks.bench_wait --scaling          # 500, 2,000 and 5,000 waits, 20 s
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import anyio
from aiohttp import web

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.webhooks import aiohttp_handler

from ._harness import compare, fake_server

DEFINITION = "bench-wait"
FINAL = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "TERMINATED", "EXPIRED", "CANCELLED"})
NAIVE_INTERVAL = 1.0


async def _control(session: aiohttp.ClientSession, base_url: str, path: str, body: Any) -> Any:
    async with session.post(f"{base_url}/_fake/{path}", json=body) as response:
        response.raise_for_status()
        return await response.json()


async def _fake_get(session: aiohttp.ClientSession, base_url: str, path: str) -> Any:
    async with session.get(f"{base_url}/_fake/{path}") as response:
        response.raise_for_status()
        return await response.json()


async def _launch(base_url: str, token: str, waits: int, window: float) -> list[str]:
    """N executions finishing within `window` seconds from now (launched, not measured)."""
    headers = {"Authorization": token}
    body = {"workflowDefinitionId": DEFINITION, "locale": "en", "parameters": {}}
    ids: list[str] = []
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        await _control(
            session,
            base_url,
            f"workflows/{DEFINITION}",
            # Launching takes a moment: each execution's window starts when it does.
            {"statuses": ["RUNNING", "COMPLETED"], "finish_between": [0.5, window]},
        )

        async def one() -> None:
            async with session.post(f"{base_url}/workflows", json=body) as response:
                response.raise_for_status()
                ids.append((await response.json())["id"])

        async with anyio.create_task_group() as tg:
            for _ in range(waits):
                tg.start_soon(one)
    return ids


async def _server_gets(base_url: str) -> int:
    async with aiohttp.ClientSession() as session:
        stats = await _fake_get(session, base_url, "stats")
    return int(stats["requests"].get("GET /workflows/{id}", 0))


async def _measure(base_url: str, ids: list[str], returned: dict[str, float]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        finishes: dict[str, float] = (await _fake_get(session, base_url, "finishes"))["finishes"]
    delays = sorted(returned[i] - finishes[i] for i in ids)
    if len(delays) != len(ids):
        raise RuntimeError(f"{len(delays)} of {len(ids)} waits returned")
    if delays[0] < -0.01:
        raise RuntimeError(f"a waiter returned {-delays[0]:.3f}s before its execution finished")
    return {
        "delay_median_s": statistics.median(delays),
        "delay_p99_s": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "delay_max_s": delays[-1],
    }


async def _finish(
    base_url: str, ids: list[str], returned: dict[str, float], gets_before: int, cpu: float
) -> dict[str, Any]:
    waits = len(ids)
    result = await _measure(base_url, ids, returned)
    result["requests_per_execution"] = (await _server_gets(base_url) - gets_before) / waits
    result["wait_cpu_s"] = cpu
    result["cpu_ms_per_wait"] = cpu / waits * 1000
    return result


async def sdk(base_url: str, token: str, waits: int, window: float) -> dict[str, Any]:
    """`wait_for_completion` per execution, default PollPolicy: polling alone."""
    ids = await _launch(base_url, token, waits, window)
    gets_before = await _server_gets(base_url)
    returned: dict[str, float] = {}
    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:
        cpu = time.process_time()

        async def wait(execution_id: str) -> None:
            await tl.workflows.wait_for_completion(execution_id)
            returned[execution_id] = time.monotonic()

        async with anyio.create_task_group() as tg:
            for execution_id in ids:
                tg.start_soon(wait, execution_id)
        cpu = time.process_time() - cpu
    return await _finish(base_url, ids, returned, gets_before, cpu)


async def sdk_webhooks(base_url: str, token: str, waits: int, window: float) -> dict[str, Any]:
    """The same waits, with a webhook receiver (aiohttp_handler) waking them early."""
    ids = await _launch(base_url, token, waits, window)
    gets_before = await _server_gets(base_url)
    returned: dict[str, float] = {}
    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:
        app = web.Application()
        app.router.add_post("/hooks", aiohttp_handler(tl))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
        async with aiohttp.ClientSession() as control:
            await _control(control, base_url, "webhooks/subscribe", {"url": hook})
            try:
                cpu = time.process_time()

                async def wait(execution_id: str) -> None:
                    await tl.workflows.wait_for_completion(execution_id)
                    returned[execution_id] = time.monotonic()

                async with anyio.create_task_group() as tg:
                    for execution_id in ids:
                        tg.start_soon(wait, execution_id)
                cpu = time.process_time() - cpu
            finally:
                await _control(control, base_url, "webhooks/unsubscribe", {"url": hook})
                await runner.cleanup()
    return await _finish(base_url, ids, returned, gets_before, cpu)


async def naive_poller(base_url: str, token: str, waits: int, window: float) -> dict[str, Any]:
    """What one writes first: every execution polled every second with raw aiohttp."""
    ids = await _launch(base_url, token, waits, window)
    gets_before = await _server_gets(base_url)
    returned: dict[str, float] = {}
    headers = {"Authorization": token, "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        cpu = time.process_time()

        async def wait(execution_id: str) -> None:
            url = f"{base_url}/workflows/{execution_id}"
            while True:
                await anyio.sleep(NAIVE_INTERVAL)
                async with session.get(url) as response:
                    response.raise_for_status()
                    if (await response.json())["status"] in FINAL:
                        returned[execution_id] = time.monotonic()
                        return

        async with anyio.create_task_group() as tg:
            for execution_id in ids:
                tg.start_soon(wait, execution_id)
        cpu = time.process_time() - cpu
    return await _finish(base_url, ids, returned, gets_before, cpu)


METRICS = (
    "delay_p99_s",
    "requests_per_execution",
    "wait_cpu_s",
    "cpu_ms_per_wait",
    "peak_rss_mib",
)


def run(
    sizes: Sequence[int], *, window: float, rounds: int, naive: bool = True, suffix: str = ""
) -> None:
    for waits in sizes:
        with fake_server("--journal-limit", "1000") as server:
            kwargs = {
                "base_url": server.base_url,
                "token": server.org_token,
                "waits": waits,
                "window": window,
            }
            contenders = {
                "sdk_polling": ("benchmarks.bench_wait:sdk", kwargs),
                "sdk_webhooks": ("benchmarks.bench_wait:sdk_webhooks", kwargs),
            }
            if naive:
                contenders["naive_1s_poller"] = ("benchmarks.bench_wait:naive_poller", kwargs)
            compare(
                f"wait_{waits}{suffix}",
                contenders,
                rounds=rounds,
                metric="delay_median_s",
                unit="s",
                higher_is_better=False,
                baseline="sdk_webhooks",
                extra_metrics=METRICS,
            )


def main(quick: bool = False) -> None:
    if quick:
        run([200], window=10.0, rounds=1)
    else:
        run([1000], window=60.0, rounds=1)


def scaling() -> None:
    """500, 2,000 and 5,000 waits in a 20 s window: cost linear in waits, memory small."""
    run([500, 2000, 5000], window=20.0, rounds=1, naive=False, suffix="_scaling")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_wait")
    parser.add_argument("--waits", default="1000", help="comma-separated, e.g. 500,2000")
    parser.add_argument("--wait-window", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive poller")
    parser.add_argument("--scaling", action="store_true", help="500/2000/5000 waits, 20 s")
    arguments = parser.parse_args()
    if arguments.scaling:
        scaling()
    else:
        run(
            [int(n) for n in arguments.waits.split(",")],
            window=arguments.wait_window,
            rounds=arguments.rounds,
            naive=not arguments.no_naive,
        )
