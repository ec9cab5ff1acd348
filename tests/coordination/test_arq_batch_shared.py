"""examples/arq_batch.py: the workers of one batch share one token and one rate limit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import anyio
import pytest
import redis.asyncio as redis_asyncio

from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "arq_batch.py"
#: Launches a second for the whole batch; the API refuses beyond LIMIT.
RATE = 20
LIMIT = 25
SLICE = 50


def _env(fake: FakeTransactionLink, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSACTIONLINK_")}
    env.update(
        TRANSACTIONLINK_API_KEY=fake.api_key,
        TRANSACTIONLINK_API_SECRET=fake.api_secret,
        TRANSACTIONLINK_BASE_URL=fake.base_url,
        REDIS_URL=redis_url,
        RATE_LIMIT=str(RATE),
        JOURNAL_NAME=f"shared-{uuid.uuid4().hex[:8]}",
        PYTHONPATH=str(ROOT),
    )
    return env


async def _results(redis_url: str, count: int) -> None:
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        # arq keeps its results as keys in Redis: nothing to wait on but polling them.
        while len([key async for key in client.scan_iter(match="arq:result:*")]) < count:  # noqa: ASYNC110
            await anyio.sleep(0.1)
    finally:
        await client.aclose()


async def test_two_workers_launch_one_batch_within_one_shared_rate_limit(
    fake: FakeTransactionLink, redis_url: str, tmp_path: Path
) -> None:
    fake.define_workflow("kyc")
    fake.set_rate_limit("POST", "/workflows", per_second=LIMIT, burst=3)
    batch = tmp_path / "batch.jsonl"
    lines = [
        {"key": f"k{n}", "workflowDefinitionId": "kyc", "locale": "en", "parameters": {"n": n}}
        for n in range(2 * SLICE)
    ]
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = _env(fake, redis_url)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "worker",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        with anyio.fail_after(60):
            enqueued = await anyio.run_process(
                [sys.executable, str(EXAMPLE), "enqueue", str(batch), "--slice", str(SLICE)],
                env=env,
                cwd=ROOT,
            )
            assert len(json.loads(enqueued.stdout)["jobs"]) == 2
            await _results(redis_url, 2)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            said = [(await worker.communicate())[0].decode() for worker in workers]

    # One slice each, at the same time: together they ran at the batch's rate, not twice it.
    assert [text.count("started") for text in said] == [1, 1], said
    assert fake.stats()["answers"]["POST /workflows"] == {"200": 2 * SLICE}
    launches = sorted(
        (entry.started, entry.json()["parameters"]["n"] // SLICE)
        for entry in fake.requests("POST", "/workflows")
    )
    spans = [[at for at, part in launches if part == p] for p in (0, 1)]
    overlap = min(spans[0][-1], spans[1][-1]) - max(spans[0][0], spans[1][0])
    assert overlap > 1.0
    assert launches[-1][0] - launches[0][0] >= 0.9 * (2 * SLICE - 1) / RATE
    # The two workers' clients: one authorize for both.
    assert fake.count("POST", "/auth/authorize") == 1
