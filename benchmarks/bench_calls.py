"""Call overhead: `tl.workflows.get` versus the same GET and JSON parse in raw aiohttp and httpx."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import anyio
import httpx

from transactionlink_async import OrganizationToken, TransactionLink

from ._harness import compare, fake_server


async def prepare(base_url: str, token: str) -> str:
    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:
        # A definition that never finishes keeps every GET the same size.
        execution = await tl.workflows.initialise(workflow_definition_id="bench", locale="en")
        return execution.id


async def _drive(call: Any, total: int, concurrency: int) -> float:
    """Run `call()` `total` times with `concurrency` tasks; return calls per second.

    One untimed call per task first: every contender opens its connections before the
    clock starts.
    """
    per_task = total // concurrency
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(call)
    started = time.perf_counter()

    async def worker() -> None:
        for _ in range(per_task):
            await call()

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return per_task * concurrency / (time.perf_counter() - started)


async def sdk(
    base_url: str, token: str, execution_id: str, total: int, concurrency: int
) -> dict[str, Any]:
    async with TransactionLink(OrganizationToken(token), base_url=base_url) as tl:

        async def call() -> None:
            await tl.workflows.get(execution_id)

        return {"rate": await _drive(call, total, concurrency)}


async def raw_aiohttp(
    base_url: str, token: str, execution_id: str, total: int, concurrency: int
) -> dict[str, Any]:
    url = f"{base_url}/workflows/{execution_id}"
    headers = {"Authorization": token, "Accept": "application/json"}
    async with aiohttp.ClientSession() as session:

        async def call() -> None:
            async with session.get(url, headers=headers) as response:
                response.raise_for_status()
                await response.json()

        return {"rate": await _drive(call, total, concurrency)}


async def raw_httpx(
    base_url: str, token: str, execution_id: str, total: int, concurrency: int
) -> dict[str, Any]:
    url = f"{base_url}/workflows/{execution_id}"
    headers = {"Authorization": token, "Accept": "application/json"}
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:

        async def call() -> None:
            response = await client.get(url, headers=headers)
            response.raise_for_status()
            response.json()

        return {"rate": await _drive(call, total, concurrency)}


def main(quick: bool = False) -> None:
    total = 2_000 if quick else 20_000
    rounds = 1 if quick else 3
    with fake_server("--journal-limit", "1000") as server:
        execution_id = anyio.run(prepare, server.base_url, server.org_token)
        for concurrency in (1, 100):
            kwargs = {
                "base_url": server.base_url,
                "token": server.org_token,
                "execution_id": execution_id,
                "total": total,
                "concurrency": concurrency,
            }
            compare(
                f"calls_c{concurrency}",
                {
                    "sdk": ("benchmarks.bench_calls:sdk", kwargs),
                    "aiohttp": ("benchmarks.bench_calls:raw_aiohttp", kwargs),
                    "httpx": ("benchmarks.bench_calls:raw_httpx", kwargs),
                },
                rounds=rounds,
                metric="rate",
                unit="calls/s",
                # With --before DIR: the SDK as it was, in the same rounds.
                before=["sdk"],
            )
