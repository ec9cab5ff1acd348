"""Three processes run one batch on one RedisJournal: each key is launched by exactly one."""

from __future__ import annotations

import os
import sys
import uuid
from collections import Counter
from pathlib import Path

import anyio
import anyio.abc
import pytest

from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("split_batch.py")
KEYS = 600
PROCESSES = 3


async def run_worker(
    fake: FakeTransactionLink,
    redis_url: str,
    name: str,
    ready: anyio.abc.ObjectSendStream[None],
    go: anyio.Event,
    outputs: list[str],
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        str(WORKER),
        fake.base_url,
        fake.org_token,
        redis_url,
        name,
        str(KEYS),
        "10",
    ]
    output = b""
    with anyio.fail_after(120):
        async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
            assert process.stdout is not None
            assert process.stdin is not None
            while b"ready\n" not in output:
                output += await process.stdout.receive()
            await ready.send(None)
            await go.wait()
            await process.stdin.send(b"go\n")
            async for chunk in process.stdout:
                output += chunk
            assert await process.wait() == 0
    outputs.append(output.decode())


async def test_three_processes_split_one_batch_and_launch_each_key_once(
    fake: FakeTransactionLink, redis_url: str
) -> None:
    fake.define_workflow("kyc")
    # Launches that take a moment, so the processes overlap on the same keys.
    fake.inject("POST", "/workflows", delay=0.01, times=None)
    name = f"split-{uuid.uuid4().hex[:8]}"
    outputs: list[str] = []
    go = anyio.Event()
    send, receive = anyio.create_memory_object_stream[None](PROCESSES)
    async with anyio.create_task_group() as group, send, receive:
        for _ in range(PROCESSES):
            group.start_soon(run_worker, fake, redis_url, name, send, go, outputs)
        for _ in range(PROCESSES):
            await receive.receive()
        go.set()

    launched: Counter[str] = Counter()
    seen: dict[str, set[str]] = {}
    per_process = []
    for output in outputs:
        lines = [line.split(" ") for line in output.splitlines() if line not in ("ready", "done")]
        assert not [line for line in lines if line[0] == "error"], lines[:3]
        keys = [line[1] for line in lines]
        assert sorted(keys) == sorted(f"k{n}" for n in range(KEYS)), "an outcome per key"
        mine = [line[1] for line in lines if line[0] == "launched"]
        per_process.append(len(mine))
        launched.update(mine)
        for _, key, execution_id in lines:
            seen.setdefault(key, set()).add(execution_id)
    assert set(launched.values()) == {1}, "a key was launched by two processes"
    assert len(launched) == KEYS
    assert fake.stats()["executions"] == KEYS
    # Every process reports the one execution of each key, whoever launched it.
    assert all(len(ids) == 1 for ids in seen.values())
    assert all(count > 0 for count in per_process), f"a process launched nothing: {per_process}"
