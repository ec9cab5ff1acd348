"""examples/arq_worker.py: two arq worker processes act as one client, woken by webhooks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import redis.asyncio
from aiohttp import web

from transactionlink_async import ApiKey, TransactionLink
from transactionlink_async.coordination import RedisCoordination
from transactionlink_async.testing import FakeTransactionLink
from transactionlink_async.webhooks import aiohttp_handler

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "arq_worker.py"


def _env(fake: FakeTransactionLink, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSACTIONLINK_")}
    env.update(
        TRANSACTIONLINK_API_KEY=fake.api_key,
        TRANSACTIONLINK_API_SECRET=fake.api_secret,
        TRANSACTIONLINK_BASE_URL=fake.base_url,
        TRANSACTIONLINK_WORKFLOW="kyc",
        TRANSACTIONLINK_REDIS_URL=redis_url,
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
    )
    return env


async def _clients(watcher: redis.asyncio.Redis) -> int:
    """Connections the Redis server holds, this one included."""
    info = await watcher.info("clients")
    return int(info["connected_clients"])


@asynccontextmanager
async def webhook_receiver(tl: TransactionLink) -> AsyncIterator[str]:
    """The app side of the deployment: receives the deliveries, in this process."""
    app = web.Application()
    app.router.add_post("/webhooks", aiohttp_handler(tl))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks"
    finally:
        await runner.cleanup()


async def test_arq_workers_share_one_token_and_wake_on_webhooks(
    fake: FakeTransactionLink, redis_url: str
) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING", "COMPLETED"), seconds_per_status=0.3)
    env = _env(fake, redis_url)
    watcher = redis.asyncio.Redis.from_url(redis_url)
    before = await _clients(watcher)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "worker",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    # Both workers up and polling before any job: four interpreters starting at once on
    # a small CI machine can hold a Redis read past its limit, and a client that cannot
    # read the shared token in time rightly authorizes on its own.
    with anyio.fail_after(30):
        while await _clients(watcher) < before + 2:  # noqa: ASYNC110 (another process)
            await anyio.sleep(0.05)
    await watcher.aclose()
    receiver = TransactionLink(
        ApiKey(fake.api_key, fake.api_secret),
        base_url=fake.base_url,
        coordination=RedisCoordination(redis_url),
    )
    try:
        async with receiver, webhook_receiver(receiver) as url:
            fake.webhooks.subscribe(url)
            with anyio.fail_after(60):
                done = await anyio.run_process(
                    [sys.executable, str(EXAMPLE), "enqueue", "c1", "c2", "c3", "c4"],
                    env=env,
                    cwd=ROOT,
                    check=False,
                )
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            codes = [await worker.wait() for worker in workers]
    out = done.stdout.decode()
    assert done.returncode == 0, (out, done.stderr.decode())
    assert sorted(line.split(":")[0] for line in out.splitlines()) == ["c1", "c2", "c3", "c4"]
    assert out.count("COMPLETED") == 4
    # Each wait confirmed with one GET soon after its execution finished, where its first
    # poll was 5 s away: the webhook landing in this process woke the worker's wait.
    assert len(fake.executions) == 4
    for execution_id in fake.executions:
        finished = fake.finishes_at(execution_id)
        assert finished is not None
        (check,) = [e for e in fake.journal if e.path == f"/workflows/{execution_id}"]
        assert check.started - finished < 2
    # Two worker processes and the receiver: one authorize.
    assert fake.count("POST", "/auth/authorize") == 1
    # on_shutdown closed each client cleanly.
    assert codes == [0, 0]
