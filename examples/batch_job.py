"""A nightly batch: one workflow per customer, launched with bounded concurrency, waited for
together, and each result saved to a file.

    TRANSACTIONLINK_TOKEN=tot_... TRANSACTIONLINK_WORKFLOW=<definition id> \\
        python examples/batch_job.py results/ customer-1 customer-2 ...

Environment: TRANSACTIONLINK_TOKEN (or TRANSACTIONLINK_API_KEY and
TRANSACTIONLINK_API_SECRET), TRANSACTIONLINK_BASE_URL (optional), TRANSACTIONLINK_WORKFLOW
(the workflow definition to run), TRANSACTIONLINK_LOCALE (optional, default en).
Exit code 0 when every workflow completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import anyio

from transactionlink_async import LaunchRequest, TransactionLink, WorkflowStatus


async def run_batch(
    tl: TransactionLink,
    customers: list[str],
    folder: Path,
    *,
    concurrency: int = 20,
    max_wait: float = 3600,
) -> dict[str, str]:
    """Launch, wait, download; returns each customer's outcome."""
    definition = os.environ["TRANSACTIONLINK_WORKFLOW"]
    locale = os.environ.get("TRANSACTIONLINK_LOCALE", "en")
    requests = [
        LaunchRequest(
            workflow_definition_id=definition, locale=locale, parameters={"customerId": c}
        )
        for c in customers
    ]
    outcomes: dict[str, str] = {}
    customer_of: dict[str, str] = {}
    # At most `concurrency` launches in flight; a 429 slows the whole batch down.
    async for launch in tl.workflows.launch_many(requests, concurrency=concurrency):
        customer = customers[launch.index]
        if launch.execution is None:
            # Refused or failed: never resent behind our back, so it is safe to retry later.
            outcomes[customer] = f"not launched: {launch.error}"
            continue
        customer_of[launch.execution.id] = customer
    print(f"launched {len(customer_of)} of {len(customers)}", flush=True)

    # Each wait costs one small GET per poll interval; they come back as they finish.
    # `async with` cancels the remaining waits should the loop body fail.
    async with tl.workflows.wait_many(customer_of, timeout=max_wait) as finished:
        async for execution in finished:
            customer = customer_of[execution.id]
            if execution.status != WorkflowStatus.COMPLETED:
                outcomes[customer] = str(execution.status)
                continue
            # Large results come through a pre-signed link: streamed to disk, resumed after
            # a dropped connection, checked, and renamed into place only when complete.
            saved = await tl.workflows.download_result(execution.id, folder / f"{customer}.json")
            outcomes[customer] = f"COMPLETED, {saved.size} bytes in {saved.path.name}"
    return outcomes


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="run a workflow for each customer")
    parser.add_argument("folder", type=Path, help="where the results are saved")
    parser.add_argument("customers", nargs="+", help="customer ids")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    async with TransactionLink.from_env() as tl:
        outcomes = await run_batch(tl, args.customers, args.folder, concurrency=args.concurrency)
    for customer in args.customers:
        print(f"{customer}: {outcomes[customer]}")
    return 0 if all(o.startswith("COMPLETED") for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1:]))
