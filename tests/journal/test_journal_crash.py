"""A keyed batch SIGKILLed at random moments, then run to completion: nothing launched twice."""

from __future__ import annotations

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

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
BATCH = Path(__file__).with_name("crash_batch.py")
KEYS = 1500
CONCURRENCY = 8
#: More with TL_CRASH_SEEDS=N: each seed is one run killed at a random moment.
SEEDS = int(os.environ.get("TL_CRASH_SEEDS", "4"))


async def run_batch(fake: FakeTransactionLink, journal: Path, kill_after: float | None) -> str:
    """Run the batch in its own process; SIGKILL it `kill_after` seconds after it started."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        str(BATCH),
        fake.base_url,
        fake.org_token,
        str(journal),
        str(KEYS),
        str(CONCURRENCY),
    ]
    output = b""
    async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
        assert process.stdout is not None
        with anyio.fail_after(60):
            while b"ready\n" not in output:
                output += await process.stdout.receive()
            if kill_after is None:
                async for chunk in process.stdout:
                    output += chunk
                assert await process.wait() == 0
                return output.decode()
            with anyio.move_on_after(kill_after):
                async for chunk in process.stdout:
                    output += chunk
            process.send_signal(signal.SIGKILL)
            async for chunk in process.stdout:
                output += chunk
            await process.wait()
    return output.decode()


def executions_by_key(fake: FakeTransactionLink) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for execution_id, execution in fake.executions.items():
        found[f"k{execution['parameters']['n']}"].append(execution_id)
    return found


async def entries(path: Path) -> dict[str, tuple[KeyState, str | None]]:
    async with SqliteJournal(path) as journal:
        return {e.key: (e.state, e.execution_id) async for e in journal.entries()}


async def test_kills_at_random_moments_never_launch_a_key_twice(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    fake.define_workflow("kyc")
    # Launches take a while, so a kill lands with some in flight.
    fake.inject("POST", "/workflows", delay=0.02, times=None)
    journal = tmp_path / "run.db"
    in_doubt_before = 0
    for seed in range(SEEDS):
        rng = random.Random(seed)
        output = await run_batch(fake, journal, kill_after=rng.uniform(0.2, 0.8))
        assert "done" not in output, "killed too late: the batch had ended"
        recorded = await entries(journal)
        created = executions_by_key(fake)
        assert all(len(ids) == 1 for ids in created.values()), "a key was launched twice"
        for key, (state, execution_id) in recorded.items():
            if state is KeyState.LAUNCHED:
                assert created[key] == [execution_id]
        for key in created:
            # Every execution the API made is recorded, or its key is in doubt.
            assert recorded[key][0] in (KeyState.LAUNCHED, KeyState.IN_DOUBT), key
        in_doubt = sum(state is KeyState.IN_DOUBT for state, _ in recorded.values())
        assert in_doubt - in_doubt_before <= CONCURRENCY, f"seed {seed}"
        assert KeyState.CLAIMED not in {state for state, _ in recorded.values()}
        in_doubt_before = in_doubt

    # The user checks each key in doubt and records what they found.
    created = executions_by_key(fake)
    recorded = await entries(journal)
    not_launched = []
    async with SqliteJournal(journal) as opened:
        for key, (state, _) in recorded.items():
            if state is KeyState.IN_DOUBT:
                if key in created:
                    await opened.resolve(key, created[key][0])
                else:
                    await opened.resolve(key, None)
                    not_launched.append(key)
    assert in_doubt_before > 0, "no kill left a key in doubt: the harness tested little"
    resolved = await entries(journal)
    to_send = {f"k{n}" for n in range(KEYS)} - {
        key for key, (state, _) in resolved.items() if state is KeyState.LAUNCHED
    }
    assert set(not_launched) <= to_send
    before = set(fake.executions)
    output = await run_batch(fake, journal, kill_after=None)
    assert "in_doubt" not in output
    assert "error" not in output
    sent = {f"k{fake.executions[i]['parameters']['n']}" for i in set(fake.executions) - before}
    # The rerun sent exactly the keys without an execution: those resolved as not
    # launched, and those never sent.
    assert sent == to_send
    recorded = await entries(journal)
    created = executions_by_key(fake)
    assert len(created) == KEYS
    assert all(len(ids) == 1 for ids in created.values())
    assert {key: [execution_id] for key, (_, execution_id) in recorded.items()} == created
    assert {state for state, _ in recorded.values()} == {KeyState.LAUNCHED}
