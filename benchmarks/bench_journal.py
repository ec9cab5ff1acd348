"""Durable batches: launch_many with a journal against without, resume time, a crash campaign."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from transactionlink_async import (
    LaunchRequest,
    OrganizationToken,
    TransactionLink,
    WorkflowExecution,
)
from transactionlink_async.journal import Journal, KeyState, RedisJournal, SqliteJournal
from transactionlink_async.testing import FakeTransactionLink

from ._harness import RESULTS, ROOT, compare, fake_server, machine

DEFINITION = "bench"
BATCH = "benchmarks._journal_batch"


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("the journal benchmark needs redis-server on PATH")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _journal(kind: str, where: str) -> Journal | None:
    if kind == "none":
        return None
    if kind == "sqlite":
        return SqliteJournal(Path(where) / "journal.db")
    return RedisJournal(where, f"bench-{os.getpid()}-{time.time_ns()}")


def _requests(total: int, start: int = 0) -> Iterator[LaunchRequest]:
    for n in range(start, start + total):
        yield LaunchRequest(
            workflow_definition_id=DEFINITION, locale="en", parameters={"n": n}, key=f"k{n}"
        )


# -- launches/s with and without a journal ---------------------------------------------------


async def launches(
    base_url: str, org_token: str, kind: str, where: str, total: int, concurrency: int
) -> dict[str, Any]:
    """`total` keyed launches, `concurrency` at a time, through the journal `kind`."""
    folder = tempfile.mkdtemp(prefix="bench-journal-")
    journal = _journal(kind, where or folder)
    ok = 0
    async with contextlib.AsyncExitStack() as stack:
        if journal is not None:
            await stack.enter_async_context(journal)
        tl = await stack.enter_async_context(
            TransactionLink(OrganizationToken(org_token), base_url=base_url)
        )
        started = time.perf_counter()
        async for outcome in tl.workflows.launch_many(
            _requests(total), concurrency=concurrency, journal=journal
        ):
            ok += outcome.ok and not outcome.resumed
        elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    if ok != total:
        raise RuntimeError(f"{ok} of {total} launches went through")
    return {"rate": total / elapsed}


# -- resume: skipping a 100,000-key journal ------------------------------------------------


async def resume(
    base_url: str, org_token: str, kind: str, where: str, total: int
) -> dict[str, Any]:
    """Time a rerun of `total` keys that the journal already records as launched."""
    folder = tempfile.mkdtemp(prefix="bench-journal-")
    target = where or folder
    name_journal = _journal(kind, target)
    assert name_journal is not None
    execution = WorkflowExecution(id="x", status="CREATED", workflow_definition_id=DEFINITION)
    async with name_journal as journal:
        for start in range(0, total, 2000):
            stop = min(total, start + 2000)
            async with anyio.create_task_group() as group:
                for n in range(start, stop):
                    group.start_soon(
                        journal.record_launched,
                        f"k{n}",
                        WorkflowExecution(id=f"x{n}", status=execution.status),
                    )
        async with TransactionLink(OrganizationToken(org_token), base_url=base_url) as tl:
            started = time.perf_counter()
            resumed = 0
            async for outcome in tl.workflows.launch_many(
                _requests(total), concurrency=100, journal=journal
            ):
                resumed += outcome.resumed
            elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    if resumed != total:
        raise RuntimeError(f"{resumed} of {total} keys were resumed")
    return {"seconds": elapsed}


# -- the crash campaign --------------------------------------------------------------------


async def _run_batch(
    fake: FakeTransactionLink, journal: Path, keys: int, concurrency: int, kill_after: float | None
) -> None:
    command = [
        sys.executable,
        "-m",
        BATCH,
        fake.base_url,
        fake.org_token,
        str(journal),
        str(keys),
        str(concurrency),
    ]
    async with await anyio.open_process(command, cwd=ROOT) as process:
        assert process.stdout is not None
        output = b""
        with anyio.fail_after(120):
            while b"ready\n" not in output:
                output += await process.stdout.receive()
            if kill_after is not None:
                with anyio.move_on_after(kill_after):
                    async for chunk in process.stdout:
                        output += chunk
                process.send_signal(signal.SIGKILL)
            async for chunk in process.stdout:
                output += chunk
            await process.wait()


async def campaign(kills: int, keys: int, concurrency: int, seed: int) -> dict[str, Any]:
    """Kill a keyed batch `kills` times at random moments, resolve, run it to the end."""
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    journal = folder / "journal.db"
    in_doubt_per_kill: list[int] = []
    async with FakeTransactionLink() as fake:
        fake.define_workflow(DEFINITION)
        fake.inject("POST", "/workflows", delay=0.02, times=None)
        before = 0
        for _ in range(kills):
            await _run_batch(fake, journal, keys, concurrency, kill_after=rng.uniform(0.1, 1.0))
            async with SqliteJournal(journal) as opened:
                now = len([e async for e in opened.entries(KeyState.IN_DOUBT)])
            in_doubt_per_kill.append(now - before)
            before = now
        created: dict[str, list[str]] = defaultdict(list)
        for execution_id, data in fake.executions.items():
            created[data["parameters"]["key"]].append(execution_id)
        async with SqliteJournal(journal) as opened:
            async for entry in opened.entries(KeyState.IN_DOUBT):
                found = created.get(entry.key)
                await opened.resolve(entry.key, found[0] if found else None)
        await _run_batch(fake, journal, keys, concurrency, kill_after=None)
        created.clear()
        for execution_id, data in fake.executions.items():
            created[data["parameters"]["key"]].append(execution_id)
    shutil.rmtree(folder, ignore_errors=True)
    duplicates = sum(len(ids) - 1 for ids in created.values())
    return {
        "kills": kills,
        "keys": keys,
        "launched": len(created),
        "duplicates": duplicates,
        "in_doubt_max": max(in_doubt_per_kill, default=0),
        "in_doubt_mean": sum(in_doubt_per_kill) / max(1, len(in_doubt_per_kill)),
        "in_doubt_per_kill": in_doubt_per_kill,
        "concurrency": concurrency,
    }


def main(quick: bool = False) -> None:
    total = 1_000 if quick else 10_000
    rounds = 1 if quick else 3
    resume_total = 10_000 if quick else 100_000
    with fake_server("--journal-limit", "1000") as server, redis_server() as redis_url:
        common = {"base_url": server.base_url, "org_token": server.org_token}
        launch = {**common, "total": total, "concurrency": 100}
        compare(
            "journal_launch_c100",
            {
                "none": (
                    "benchmarks.bench_journal:launches",
                    {**launch, "kind": "none", "where": ""},
                ),
                "sqlite": (
                    "benchmarks.bench_journal:launches",
                    {**launch, "kind": "sqlite", "where": ""},
                ),
                "redis": (
                    "benchmarks.bench_journal:launches",
                    {**launch, "kind": "redis", "where": redis_url},
                ),
            },
            rounds=rounds,
            metric="rate",
            unit="launches/s",
            baseline="none",
            extra_metrics=("peak_rss_mib",),
        )
        compare(
            f"journal_resume_{resume_total // 1000}k",
            {
                "sqlite": (
                    "benchmarks.bench_journal:resume",
                    {**common, "kind": "sqlite", "where": "", "total": resume_total},
                ),
                "redis": (
                    "benchmarks.bench_journal:resume",
                    {**common, "kind": "redis", "where": redis_url, "total": resume_total},
                ),
            },
            rounds=rounds,
            metric="seconds",
            unit="s",
            higher_is_better=False,
            baseline="sqlite",
            extra_metrics=("peak_rss_mib",),
        )
    kills = 3 if quick else 10
    figures = anyio.run(campaign, kills, 2_000 if quick else 3_000, 10, 1)
    summary = {
        "name": "journal_crash",
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        **figures,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "journal_crash.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = (
        "### journal_crash\n\n"
        f"- {figures['kills']} SIGKILLs of a {figures['keys']}-key batch (concurrency "
        f"{figures['concurrency']}) at random moments, then resolved and run to the end\n"
        f"- keys launched: {figures['launched']}, duplicates: **{figures['duplicates']}**\n"
        f"- keys in doubt per kill: max {figures['in_doubt_max']}, mean "
        f"{figures['in_doubt_mean']:.1f} (per kill: {figures['in_doubt_per_kill']})\n"
    )
    (RESULTS / "journal_crash.md").write_text(text)
    print(text)
