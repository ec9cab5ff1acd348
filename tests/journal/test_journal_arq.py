"""The arq example: a batch over worker processes; a worker killed mid-job relaunches nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.abc
import pytest
import redis.asyncio as redis_asyncio

from transactionlink_async.journal import KeyState, RedisJournal
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "arq_batch.py"
LINES = 240
SLICE = 80


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_arq_batch", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker_env(fake: FakeTransactionLink, redis_url: str, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSACTIONLINK_")}
    env.update(
        TRANSACTIONLINK_TOKEN=fake.org_token,
        TRANSACTIONLINK_BASE_URL=fake.base_url,
        REDIS_URL=redis_url,
        JOURNAL_NAME=name,
        JOURNAL_LEASE="1",
        PYTHONPATH=str(ROOT),
    )
    return env


async def start_worker(env: dict[str, str]) -> anyio.abc.Process:
    return await anyio.open_process(
        [sys.executable, str(EXAMPLE), "worker"], env=env, cwd=ROOT, stderr=None
    )


async def test_a_worker_killed_mid_job_has_its_job_rerun_without_launching_twice(
    fake: FakeTransactionLink, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.define_workflow("kyc")
    fake.inject("POST", "/workflows", delay=0.1, times=None)
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "".join(
            json.dumps(
                {
                    "key": f"k{n}",
                    "workflowDefinitionId": "kyc",
                    "locale": "en",
                    "parameters": {"n": n},
                }
            )
            + "\n"
            for n in range(LINES)
        )
    )
    monkeypatch.setenv("REDIS_URL", redis_url)
    name = f"arq-{uuid.uuid4().hex[:8]}"
    env = worker_env(fake, redis_url, name)
    jobs = await load_example().enqueue(batch, SLICE)
    assert len(jobs) == LINES // SLICE
    client = redis_asyncio.Redis.from_url(redis_url)
    workers: list[anyio.abc.Process] = []
    try:
        with anyio.fail_after(90):
            first = await start_worker(env)
            workers.append(first)
            # Killed mid-job: some of its slice launched, some in flight.
            while fake.stats()["executions"] < 15:  # noqa: ASYNC110 - the fake counts
                await anyio.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            await first.wait()
            # arq gives the job to another worker once its in-progress mark expires (the
            # job timeout + 10 s); dropping the mark stands in for that wait.
            async for mark in client.scan_iter(match="arq:in-progress:*"):
                await client.delete(mark)
            workers += [await start_worker(env), await start_worker(env)]
            results: dict[str, Any] = {}
            while len(results) < len(jobs):
                await anyio.sleep(0.2)
                for job_id in jobs:
                    raw = await client.get(f"arq:result:{job_id}")
                    if raw is not None:
                        results[job_id] = raw
    finally:
        for process in workers:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
            await process.wait()
            await process.aclose()
        await client.aclose()

    created = Counter(data["parameters"]["n"] for data in fake.executions.values())
    assert set(created.values()) == {1}, "a key was launched twice"
    async with RedisJournal(redis_url, name) as journal:
        states = {entry.key: entry.state async for entry in journal.entries()}
    assert len(states) == LINES
    in_doubt = [key for key, state in states.items() if state is KeyState.IN_DOUBT]
    # Only what the killed worker had in flight (its job ran 10 at a time).
    assert len(in_doubt) <= 10
    launched = {key for key, state in states.items() if state is KeyState.LAUNCHED}
    assert launched | set(in_doubt) == {f"k{n}" for n in range(LINES)}
    assert {f"k{n}" for n in created} >= launched
