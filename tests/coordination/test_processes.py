"""Real worker processes sharing one Redis: one authorize, cross-process wake-ups, kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from transactionlink_async import ApiKey, TransactionLink
from transactionlink_async.coordination import RedisCoordination
from transactionlink_async.testing import FakeTransactionLink

from .conftest import eventually

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            raw = await self.process.stdout.readline()
            if not raw:
                raise AssertionError(f"{self.name} ended without saying more")
            said: dict[str, Any] = json.loads(raw)
            if "error" not in said:
                return said


Spawn = Callable[..., "asyncio.Future[Worker]"]


@pytest.fixture
async def spawn(fake: FakeTransactionLink, redis_url: str) -> AsyncIterator[Any]:
    """`await spawn(name, *options)`: a worker process (see worker.py), killed at the end."""
    workers: list[Worker] = []

    async def start(name: str, *options: str) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.coordination.worker",
            *options,
            # After "--": a random secret starting with "-" is not taken for an option.
            "--",
            fake.base_url,
            fake.api_key,
            fake.api_secret,
            redis_url,
            name,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        worker = Worker(name, process)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.returncode is None:
            worker.process.kill()
        await worker.process.wait()


async def test_four_processes_authorize_once_and_wake_on_a_webhook_landing_elsewhere(
    fake: FakeTransactionLink, redis_url: str, spawn: Any
) -> None:
    execution_id = fake.create_execution(status="RUNNING")
    workers = [await spawn(f"worker-{n}", "--wait", execution_id) for n in range(4)]
    with anyio.fail_after(60):
        for worker in workers:
            assert (await worker.line())["ready"] == worker.name
    async with TransactionLink(
        ApiKey(fake.api_key, fake.api_secret),
        base_url=fake.base_url,
        coordination=RedisCoordination(redis_url, timeout=2.0),
    ) as receiver:
        fake.set_status(execution_id, "COMPLETED")
        delivered = time.monotonic()
        await receiver.webhooks.handle(
            *fake.webhooks.signed({"workflowId": execution_id, "status": "COMPLETED"})
        )
        with anyio.fail_after(10):
            done = [await worker.line() for worker in workers]
    assert {d["status"] for d in done} == {"COMPLETED"}
    # The same clock in every process (CLOCK_MONOTONIC is machine-wide).
    assert max(d["at"] for d in done) - delivered < 2
    assert fake.count("POST", "/auth/authorize") == 1


async def test_a_worker_killed_while_renewing_holds_the_others_up_a_lease_at_most(
    fake: FakeTransactionLink, spawn: Any
) -> None:
    fake.set_access_token_lifetime(1.5)
    probe = fake.create_execution(status="RUNNING")
    # The first refresh hangs, so its sender can be caught in the act and killed.
    fake.inject("POST", "/auth/refresh", delay=2.0, times=1)
    workers = [await spawn(f"worker-{n}", "--probe", probe, "--calls-for", "7") for n in range(3)]
    with anyio.fail_after(60):
        for worker in workers:
            assert (await worker.line())["ready"] == worker.name
    await eventually(lambda: fake.in_flight("POST", "/auth/refresh"), within=10)
    (renewing,) = [e for e in fake.journal if e.path == "/auth/refresh" and e.in_flight]
    agent = renewing.headers["User-Agent"]
    (victim,) = [w for w in workers if agent.startswith(w.name + " ")]
    victim.process.send_signal(signal.SIGKILL)
    survivors = [w for w in workers if w is not victim]
    with anyio.fail_after(30):
        done = [await worker.line() for worker in survivors]
    assert [d["errors"] for d in done] == [0, 0]
    assert all(d["calls"] > 10 for d in done)
    # The dead worker's refresh token may have been spent: then one authorize more, no more.
    assert fake.count("POST", "/auth/authorize") <= 2
