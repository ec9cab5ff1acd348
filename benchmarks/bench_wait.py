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
    python -m benchmarks.bench_wait --waits 1000,100000 --wait-window 120 --contenders polling
    python -m benchmarks.bench_wait --idle 100000      # what an idle wait costs in memory

With `--before DIR` (or `python -m benchmarks --before DIR wait`), the SDK's contenders
also run from that checkout, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import anyio
from aiohttp import web

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.webhooks import aiohttp_handler

from ._harness import BEFORE_ENV, compare, fake_server

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
    gets = await _server_gets(base_url) - gets_before
    result["requests_per_execution"] = gets / waits
    result["wait_cpu_s"] = cpu
    result["cpu_ms_per_wait"] = cpu / waits * 1000
    # Everything the client did while waiting (scheduling, webhooks received...) per GET.
    result["cpu_us_per_get"] = cpu / max(gets, 1) * 1e6
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
    """The same waits, with a webhook receiver (aiohttp_handler) waking them early.

    Subscribed before the launches, as a deployment is: an execution that finishes
    before its wait begins is announced too, and the client keeps that news for its
    wait for 60 s (up to 10,000 of them; older ones are left to the safety net, which
    the 100,000-wait run's p99 shows, since all launches come before the first wait).
    The CPU figures count the waits only, not the deliveries handled while launching.
    """
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
                ids = await _launch(base_url, token, waits, window)
                gets_before = await _server_gets(base_url)
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


def _rss_kib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


async def _idle(start: Any, waits: int) -> dict[str, Any]:
    """`waits` tasks each started by `start(n)` and left idle: memory and CPU per wait."""
    gc.collect()
    rss, cpu = _rss_kib(), time.process_time()
    tasks = [asyncio.ensure_future(start(n)) for n in range(waits)]
    await asyncio.sleep(0.5)  # every task has run to its first sleep
    gc.collect()
    result = {
        "rss_kib_per_wait": (_rss_kib() - rss) / waits,
        "start_cpu_us_per_wait": (time.process_time() - cpu) / waits * 1e6,
    }
    for task in tasks:
        task.cancel()
    cpu = time.process_time()
    await asyncio.gather(*tasks, return_exceptions=True)
    result["cancel_cpu_us_per_wait"] = (time.process_time() - cpu) / waits * 1e6
    return result


async def sdk_idle(base_url: str, token: str, waits: int) -> dict[str, Any]:
    """`waits` wait_for_completion calls on one client, each task sleeping its first poll."""
    from transactionlink_async import PollPolicy

    poll = PollPolicy(initial=3600.0)
    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:
        return await _idle(
            lambda n: tl.workflows.wait_for_completion(f"idle-{n}", poll=poll), waits
        )


async def asyncio_sleep_idle(base_url: str, token: str, waits: int) -> dict[str, Any]:
    """The peer: `waits` tasks in `asyncio.sleep`, what a hand-written poller idles in."""
    return await _idle(lambda n: asyncio.sleep(3600.0), waits)


async def future_idle(base_url: str, token: str, waits: int) -> dict[str, Any]:
    """The floor: `waits` tasks awaiting a bare future (a task costs this much anyway)."""
    loop = asyncio.get_running_loop()

    async def bare(n: int) -> None:
        await loop.create_future()

    return await _idle(bare, waits)


METRICS = (
    "delay_p99_s",
    "requests_per_execution",
    "wait_cpu_s",
    "cpu_ms_per_wait",
    "cpu_us_per_get",
    "peak_rss_mib",
)

CONTENDERS = {
    "polling": ("sdk_polling", "benchmarks.bench_wait:sdk"),
    "webhooks": ("sdk_webhooks", "benchmarks.bench_wait:sdk_webhooks"),
}


def run(
    sizes: Sequence[int],
    *,
    window: float,
    rounds: int,
    naive: bool = True,
    suffix: str = "",
    kinds: Sequence[str] = ("polling", "webhooks"),
) -> None:
    for waits in sizes:
        with fake_server("--journal-limit", "1000") as server:
            kwargs = {
                "base_url": server.base_url,
                "token": server.org_token,
                "waits": waits,
                "window": window,
            }
            contenders = {CONTENDERS[k][0]: (CONTENDERS[k][1], kwargs) for k in kinds}
            if naive:
                contenders["naive_1s_poller"] = ("benchmarks.bench_wait:naive_poller", kwargs)
            compare(
                f"wait_{waits}{suffix}",
                contenders,
                rounds=rounds,
                metric="delay_median_s",
                unit="s",
                higher_is_better=False,
                baseline=CONTENDERS[kinds[-1]][0],
                extra_metrics=METRICS,
                before=list(c for c in contenders if c.startswith("sdk")),
            )


def idle(waits: int, *, rounds: int) -> None:
    """Memory and CPU of idle waits: the SDK against tasks in asyncio.sleep, and bare ones."""
    kwargs = {"base_url": "http://127.0.0.1:9", "token": "tot_idle", "waits": waits}
    compare(
        f"wait_idle_{waits}",
        {
            "sdk": ("benchmarks.bench_wait:sdk_idle", kwargs),
            "asyncio_sleep": ("benchmarks.bench_wait:asyncio_sleep_idle", kwargs),
            "bare_task": ("benchmarks.bench_wait:future_idle", kwargs),
        },
        rounds=rounds,
        metric="rss_kib_per_wait",
        unit="KiB",
        higher_is_better=False,
        extra_metrics=("start_cpu_us_per_wait", "cancel_cpu_us_per_wait"),
        before=["sdk"],
    )


def main(quick: bool = False) -> None:
    if quick:
        run([200], window=10.0, rounds=1)
        idle(10_000, rounds=1)
    else:
        run([1000], window=60.0, rounds=1)
        idle(100_000, rounds=3)


def scaling() -> None:
    """500, 2,000 and 5,000 waits in a 20 s window: cost linear in waits, memory small."""
    run([500, 2000, 5000], window=20.0, rounds=1, naive=False, suffix="_scaling")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_wait")
    parser.add_argument("--waits", default="1000", help="comma-separated, e.g. 500,2000")
    parser.add_argument("--wait-window", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive poller")
    parser.add_argument(
        "--contenders", default="polling,webhooks", help="SDK contenders: polling,webhooks"
    )
    parser.add_argument("--suffix", default="", help="appended to the table's name")
    parser.add_argument("--scaling", action="store_true", help="500/2000/5000 waits, 20 s")
    parser.add_argument("--idle", type=int, default=0, help="only the idle-memory run, N waits")
    parser.add_argument("--before", metavar="DIR", help="also run the SDK from this checkout")
    arguments = parser.parse_args()
    if arguments.before:
        os.environ[BEFORE_ENV] = os.path.abspath(arguments.before)
    if arguments.scaling:
        scaling()
    elif arguments.idle:
        idle(arguments.idle, rounds=arguments.rounds)
    else:
        run(
            [int(n) for n in arguments.waits.split(",")],
            window=arguments.wait_window,
            rounds=arguments.rounds,
            naive=not arguments.no_naive,
            suffix=arguments.suffix,
            kinds=arguments.contenders.split(","),
        )
