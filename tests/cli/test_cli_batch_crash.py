"""`transactionlink batch --results` SIGKILLed at random moments, then run to the end."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from collections import defaultdict
from pathlib import Path

import anyio
import pytest

from transactionlink_async.journal import KeyState, SqliteJournal
from transactionlink_async.testing import FakeTransactionLink

from .conftest import ENV_NAMES

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
KEYS = 100
#: More with TL_CRASH_SEEDS=N: each seed is one run killed at a random moment.
SEEDS = int(os.environ.get("TL_CRASH_SEEDS", "2"))


async def run_cli(
    fake: FakeTransactionLink,
    batch: Path,
    tmp_path: Path,
    kill_after: tuple[int, int, float] | None,
) -> int | None:
    """Run the command; with `kill_after=(launched, saved, seconds)`, SIGKILL it `seconds`
    after the API holds that many executions and the folder that many results."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(
        TRANSACTIONLINK_TOKEN=fake.org_token,
        TRANSACTIONLINK_BASE_URL=fake.base_url,
        PYTHONPATH=str(ROOT),
    )
    command = [
        sys.executable,
        "-m",
        "transactionlink_async",
        "batch",
        str(batch),
        "--journal",
        str(tmp_path / "run.db"),
        "--results",
        str(tmp_path / "results"),
        "--concurrency",
        "8",
    ]
    async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
        with anyio.fail_after(120):
            if kill_after is not None:
                launched, files, seconds = kill_after
                while process.returncode is None and (
                    len(fake.executions) < launched or len(saved(tmp_path)) < files
                ):
                    with anyio.move_on_after(0.02):
                        await process.wait()
                with anyio.move_on_after(seconds):
                    await process.wait()
                if process.returncode is None:
                    process.send_signal(signal.SIGKILL)
            await process.wait()
        return process.returncode


def saved(tmp_path: Path) -> set[str]:
    folder = tmp_path / "results"
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


def per_execution(fake: FakeTransactionLink, glob: str) -> dict[str, int]:
    """GETs per execution id of the paths matching `glob` (its third segment is the id)."""
    counts: dict[str, int] = defaultdict(int)
    for request in fake.requests("GET", glob):
        counts[request.path.split("/")[2]] += 1
    return counts


def key_of(fake: FakeTransactionLink) -> dict[str, str]:
    return {i: f"k{e['parameters']['n']}" for i, e in fake.executions.items()}


async def test_a_killed_pipeline_resumes_and_downloads_each_result_once(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING", "COMPLETED"), seconds_per_status=0.3)
    fake.inject("POST", "/workflows", delay=0.01, times=None)
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
            for n in range(KEYS)
        )
    )
    codes: list[int | None] = []
    for seed in range(SEEDS):
        rng = random.Random(seed)
        files_before = saved(tmp_path)
        downloads_before = per_execution(fake, "/workflows/*/result")
        async with SqliteJournal(tmp_path / "run.db") as journal:
            final_before = {
                e.execution_id async for e in journal.entries(KeyState.LAUNCHED) if e.status
            }
        polls_before = per_execution(fake, "/workflows/*")
        # Mid-launch, mid-wait or mid-download: wherever the counts say the run is.
        moment = (
            min(KEYS, len(fake.executions) + rng.randint(1, KEYS // 3)),
            min(KEYS, len(files_before) + rng.randint(0, KEYS // 3)),
            rng.uniform(0.0, 0.3),
        )
        codes.append(await run_cli(fake, batch, tmp_path, kill_after=moment))
        keys = key_of(fake)
        assert len(set(keys.values())) == len(keys), "a key was launched twice"
        downloads = per_execution(fake, "/workflows/*/result")
        polls = per_execution(fake, "/workflows/*")
        for execution_id, key in keys.items():
            if f"{key}.json" in files_before:
                assert downloads[execution_id] == downloads_before[execution_id], key
            if execution_id in final_before:
                assert polls[execution_id] == polls_before[execution_id], key

    assert -signal.SIGKILL in codes, "no run was killed before it ended"
    assert fake.executions, "the killed runs launched nothing"
    # Keys left in doubt by the kills: checked against the API, then resolved.
    created = {key: execution_id for execution_id, key in key_of(fake).items()}
    async with SqliteJournal(tmp_path / "run.db") as journal:
        async for entry in journal.entries(KeyState.IN_DOUBT):
            await journal.resolve(entry.key, created.get(entry.key))
    files_before = saved(tmp_path)
    downloads_before = per_execution(fake, "/workflows/*/result")
    assert await run_cli(fake, batch, tmp_path, kill_after=None) == 0
    keys = key_of(fake)
    assert sorted(keys.values()) == sorted(f"k{n}" for n in range(KEYS))
    assert saved(tmp_path) == {f"k{n}.json" for n in range(KEYS)}
    downloads = per_execution(fake, "/workflows/*/result")
    for execution_id, key in keys.items():
        if f"{key}.json" in files_before:
            assert downloads[execution_id] == downloads_before[execution_id], key
        else:
            assert downloads[execution_id] >= 1
