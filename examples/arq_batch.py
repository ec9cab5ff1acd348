"""A batch spread over arq workers: each job launches one slice, as one client, one journal.

    # enqueue the batch, one job per slice of 100 lines of a JSON lines file
    REDIS_URL=redis://127.0.0.1:6379/0 python examples/arq_batch.py enqueue batch.jsonl --slice 100
    # run as many workers as you like, on as many machines (same Redis, same file)
    REDIS_URL=... TRANSACTIONLINK_TOKEN=tot_... python examples/arq_batch.py worker

Each line of the file is `{"key", "workflowDefinitionId", "locale", "parameters"}` (as for
`transactionlink batch`). The workers share one `RedisJournal`: a key is claimed before it
is sent and recorded after the answer, so when a worker dies mid-job and arq runs the job
again elsewhere, the keys it launched are resumed, not launched twice; the ones it had in
flight come back in doubt (`journal.resolve` them once checked).

The workers' clients also share one `RedisCoordination` on the same Redis, so the batch
acts as one client however many workers run it: one token for all (one authorize, one
renewal per expiry), one rate limit (RATE_LIMIT launches a second for the whole batch,
not per worker; and a 429 answered to one worker pauses them all), and webhook wake-ups
(a wait in any worker ends when any process handles the delivery).

Environment: REDIS_URL, TRANSACTIONLINK_TOKEN (or TRANSACTIONLINK_API_KEY and
TRANSACTIONLINK_API_SECRET), TRANSACTIONLINK_BASE_URL (optional), RATE_LIMIT (optional:
launches a second, all workers together), JOURNAL_NAME (default "batch"), JOURNAL_LEASE
(seconds a dead worker's claims stay "in flight", default 10).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from transactionlink_async import LaunchInDoubtError, LaunchRequest, RateLimit, TransactionLink
from transactionlink_async.coordination import RedisCoordination
from transactionlink_async.journal import RedisJournal


def read_slice(path: Path, start: int, stop: int) -> Iterator[LaunchRequest]:
    """Lines start..stop-1 of the batch file, as keyed launches."""
    with path.open(encoding="utf-8") as file:
        for text in itertools.islice(file, start, stop):
            line = json.loads(text)
            yield LaunchRequest(
                workflow_definition_id=line["workflowDefinitionId"],
                locale=line["locale"],
                parameters=line.get("parameters", {}),
                key=line["key"],
            )


async def launch_slice(ctx: dict[str, Any], path: str, start: int, stop: int) -> dict[str, Any]:
    """The job: launch one slice of the file; what it did, key by key."""
    tl: TransactionLink = ctx["tl"]
    journal: RedisJournal = ctx["journal"]
    summary: dict[str, Any] = {"launched": 0, "resumed": 0, "in_doubt": [], "failed": {}}
    requests = read_slice(Path(path), start, stop)
    print(f"slice {start}-{stop} started (try {ctx['job_try']})", flush=True)
    async for outcome in tl.workflows.launch_many(requests, concurrency=10, journal=journal):
        key = outcome.request.key
        if outcome.ok:
            summary["resumed" if outcome.resumed else "launched"] += 1
        elif isinstance(outcome.error, LaunchInDoubtError):
            summary["in_doubt"].append(key)
        else:
            summary["failed"][key] = str(outcome.error)
    print(f"slice {start}-{stop} done: {json.dumps(summary)}", flush=True)
    return summary


def rate_limit() -> RateLimit | None:
    """The batch's launches a second (RATE_LIMIT), shared by every worker; None: not set."""
    value = os.environ.get("RATE_LIMIT")
    return RateLimit(float(value)) if value else None


async def startup(ctx: dict[str, Any]) -> None:
    # One client and one journal per worker process, shared by all its jobs; the clients
    # of all the workers act as one through the same Redis.
    ctx["tl"] = TransactionLink.from_env(  # opens its connections on first use
        coordination=RedisCoordination(os.environ["REDIS_URL"]),
        rate_limit=rate_limit(),
    )
    ctx["journal"] = RedisJournal(
        os.environ["REDIS_URL"],
        os.environ.get("JOURNAL_NAME", "batch"),
        lease=float(os.environ.get("JOURNAL_LEASE", "10")),
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["journal"].aclose()
    await ctx["tl"].aclose()


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ["REDIS_URL"])


def locate(path: Path) -> tuple[str, int]:
    """The file's absolute path (workers may run elsewhere) and its number of lines."""
    with path.open(encoding="utf-8") as file:
        return str(path.resolve()), sum(1 for _ in file)


async def enqueue(path: Path, size: int) -> list[str]:
    """One job per slice of `size` lines; the job ids."""
    where, lines = locate(path)
    pool = await create_pool(redis_settings())
    try:
        ids = []
        for start in range(0, lines, size):
            stop = min(lines, start + size)
            # A fixed job id: enqueueing the same batch twice adds no second job.
            job = await pool.enqueue_job(
                "launch_slice", where, start, stop, _job_id=f"{path.name}:{start}"
            )
            if job is not None:
                ids.append(job.job_id)
        return ids
    finally:
        await pool.aclose()


def worker() -> Worker:
    return Worker(
        functions=[launch_slice],
        redis_settings=redis_settings(),
        on_startup=startup,
        on_shutdown=shutdown,
        job_timeout=int(os.environ.get("JOB_TIMEOUT", "600")),
        max_jobs=1,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="arq_batch.py")
    commands = parser.add_subparsers(dest="command", required=True)
    queue = commands.add_parser("enqueue", help="one job per slice of the batch file")
    queue.add_argument("file", type=Path)
    queue.add_argument("--slice", type=int, default=100, help="lines per job (100)")
    commands.add_parser("worker", help="run jobs until stopped")
    args = parser.parse_args(argv)
    if args.command == "enqueue":
        ids = asyncio.run(enqueue(args.file, args.slice))
        print(json.dumps({"jobs": ids}))
        return 0
    worker().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
