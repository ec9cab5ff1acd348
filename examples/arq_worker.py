"""Background verification jobs on arq: one TransactionLink client per worker process.

Each arq worker process opens its client in `on_startup` and closes it in `on_shutdown`;
every job of that process shares it. With TRANSACTIONLINK_REDIS_URL set (the Redis arq
already uses will do), the clients of all the workers act as one: one authorize and one
token renewal for all of them, a webhook received by any process (e.g. the FastAPI app
of examples/fastapi_app.py started with the same environment) ends the waits of every
worker at once. Without Redis each worker goes on alone, polling.

    export REDIS_URL=redis://127.0.0.1:6379/0 TRANSACTIONLINK_REDIS_URL=$REDIS_URL
    export TRANSACTIONLINK_API_KEY=... TRANSACTIONLINK_API_SECRET=...
    export TRANSACTIONLINK_WORKFLOW=<definition id>
    python examples/arq_worker.py worker &             # as many as you like
    python examples/arq_worker.py enqueue customer-1 customer-2

Environment: TRANSACTIONLINK_TOKEN (or TRANSACTIONLINK_API_KEY and
TRANSACTIONLINK_API_SECRET), TRANSACTIONLINK_BASE_URL (optional), TRANSACTIONLINK_WORKFLOW,
TRANSACTIONLINK_LOCALE (optional, default en), REDIS_URL (arq's queue),
TRANSACTIONLINK_REDIS_URL (optional: coordinate the workers).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, ClassVar

from arq import create_pool, run_worker
from arq.connections import RedisSettings

from transactionlink_async import PollPolicy, TransactionLink

# Webhooks bring the news when a receiver shares the coordination; polling is the net.
SAFETY_NET_POLL = PollPolicy(initial=5.0, multiplier=2.0, maximum=60.0)


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


async def startup(ctx: dict[str, Any]) -> None:
    # Inside the worker's event loop: the client belongs to this process and this loop.
    ctx["tl"] = TransactionLink.from_env()


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["tl"].aclose()


async def verify_customer(ctx: dict[str, Any], customer_id: str) -> dict[str, str]:
    """Run the verification workflow for one customer and wait for its outcome."""
    tl: TransactionLink = ctx["tl"]
    execution = await tl.workflows.initialise(
        workflow_definition_id=os.environ["TRANSACTIONLINK_WORKFLOW"],
        locale=os.environ.get("TRANSACTIONLINK_LOCALE", "en"),
        parameters={"customerId": customer_id},
    )
    final = await tl.workflows.wait_for_completion(execution.id, timeout=3600, poll=SAFETY_NET_POLL)
    return {"customer": customer_id, "execution": final.id, "status": str(final.status)}


class WorkerSettings:
    functions: ClassVar[list[Any]] = [verify_customer]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    # A job waits on the API most of its time: many run at once in one process.
    max_jobs = 100


async def enqueue(customers: list[str]) -> int:
    """Queue one job per customer, print each outcome; 0 when every one completed."""
    pool = await create_pool(redis_settings())
    try:
        jobs = [await pool.enqueue_job("verify_customer", c) for c in customers]
        outcomes = await asyncio.gather(*(job.result(timeout=3600) for job in jobs if job))
    finally:
        await pool.aclose()
    for outcome in outcomes:
        print(f"{outcome['customer']}: {outcome['status']} ({outcome['execution']})", flush=True)
    return 0 if all(o["status"] == "COMPLETED" for o in outcomes) else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        run_worker(WorkerSettings)  # type: ignore[arg-type]  # arq types settings loosely
        return 0
    if argv[:1] == ["enqueue"] and argv[1:]:
        return asyncio.run(enqueue(argv[1:]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
