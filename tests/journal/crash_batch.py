"""A keyed batch in its own process, to be SIGKILLed: `python crash_batch.py URL TOKEN JOURNAL N C`.

Launches keys k0..k<N-1> (parameters {"n": i}) through launch_many with a SqliteJournal,
`C` at a time, and prints one line per outcome; "done" at the end.
"""

from __future__ import annotations

import asyncio
import sys

from transactionlink_async import (
    LaunchInDoubtError,
    LaunchRequest,
    OrganizationToken,
    TransactionLink,
)
from transactionlink_async.journal import SqliteJournal


async def main(base_url: str, token: str, path: str, count: int, concurrency: int) -> None:
    requests = (
        LaunchRequest(workflow_definition_id="kyc", locale="en", parameters={"n": n}, key=f"k{n}")
        for n in range(count)
    )
    async with (
        TransactionLink(OrganizationToken(token), base_url=base_url) as tl,
        SqliteJournal(path) as journal,
    ):
        print("ready", flush=True)
        async for outcome in tl.workflows.launch_many(
            requests, concurrency=concurrency, journal=journal
        ):
            key = outcome.request.key
            if outcome.execution is not None:
                kind = "resumed" if outcome.resumed else "launched"
                print(kind, key, outcome.execution.id, flush=True)
            elif isinstance(outcome.error, LaunchInDoubtError):
                print("in_doubt", key, flush=True)
            else:
                print("error", key, type(outcome.error).__name__, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    url, token, path, count, concurrency = sys.argv[1:6]
    asyncio.run(main(url, token, path, int(count), int(concurrency)))
