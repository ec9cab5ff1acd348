"""A process SIGKILLed at random moments while writing its journal loses nothing it was told."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import anyio
import pytest

from transactionlink_async.journal import JournalEntry, KeyState, SqliteJournal

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("journal_writer.py")
CONCURRENCY = 8
#: More with TL_KILL_SEEDS=N; each seed is one process started, killed, and checked.
SEEDS = int(os.environ.get("TL_KILL_SEEDS", "6"))

# What each acknowledged event proves about the key's entry, whatever came after it.
_AT_LEAST = {
    "claimed": {KeyState.IN_DOUBT, KeyState.LAUNCHED, KeyState.RELEASED},
    "released": {KeyState.RELEASED},
    "in_doubt": {KeyState.IN_DOUBT},
    "launched": {KeyState.LAUNCHED},
    "finished": {KeyState.LAUNCHED},
    "downloaded": {KeyState.LAUNCHED},
}


async def run_and_kill(path: Path, first: int, after: float) -> list[tuple[str, str]]:
    """Run a writer from key number `first`, SIGKILL it `after` seconds after it is ready."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(WRITER), str(path), str(first), str(CONCURRENCY)]
    output = b""
    async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
        assert process.stdout is not None
        with anyio.fail_after(30):
            while b"ready -\n" not in output:
                output += await process.stdout.receive()
        with anyio.move_on_after(after):
            while True:
                output += await process.stdout.receive()
        process.send_signal(signal.SIGKILL)
        # What it printed before dying is in the pipe: read it to the end.
        with anyio.fail_after(10):
            async for chunk in process.stdout:
                output += chunk
        assert await process.wait() == -signal.SIGKILL
    lines = output.decode().splitlines()
    if output and not output.endswith(b"\n"):
        lines.pop()  # cut mid-line by the kill: not an acknowledgement
    events = [tuple(line.split(" ", 1)) for line in lines]
    return [(event, key) for event, key in events if event != "ready"]


def check_entry(key: str, acked: list[str], entry: JournalEntry | None) -> None:
    assert entry is not None, f"{key}: acknowledged {acked} but not in the journal"
    for event in acked:
        assert entry.state in _AT_LEAST[event], f"{key}: {acked} but {entry.state}"
    if "launched" in acked:
        assert entry.execution_id == f"x-{key}"
    if "finished" in acked:
        assert entry.status == "COMPLETED"
    if "downloaded" in acked:
        assert entry.result == f"results/{key}.json"


async def test_every_acknowledged_change_survives_a_sigkill_at_any_moment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    acked: dict[str, list[str]] = defaultdict(list)
    earlier_unacked: set[str] = set()
    first = 0
    for seed in range(SEEDS):
        rng = random.Random(seed)
        events = await run_and_kill(path, first, after=rng.uniform(0.0, 0.4))
        for event, key in events:
            acked[key].append(event)
        assert not [key for event, key in events if event == "lost"], "a fresh key was taken"
        numbers = [int(key[1:]) for _, key in events]
        first = max(numbers, default=first) + CONCURRENCY + 1

        # Checked by the next process to open it, straight after the kill.
        async with SqliteJournal(path) as journal:
            entries = {entry.key: entry async for entry in journal.entries()}
        for key, history in acked.items():
            check_entry(key, history, entries.get(key))
        # Changes committed in the instant before the kill, unacknowledged: only claims
        # and their next step, at most one per worker.
        unacked = set(entries) - set(acked) - earlier_unacked
        assert len(unacked) <= CONCURRENCY, (seed, sorted(unacked))
        earlier_unacked |= unacked
        # Claimed but never answered: the keys a rerun must report in doubt.
        hanging = [
            key
            for key, history in acked.items()
            if history[-1] == "claimed" and int(key[1:]) in numbers
        ]
        assert len(hanging) <= CONCURRENCY

    assert len(acked) > SEEDS, "the writers barely wrote anything"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
