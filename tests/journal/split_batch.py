"""One of several processes sharing a batch: `python split_batch.py URL TOKEN REDIS NAME N C`.

Once "ready", waits for a line on stdin, then runs launch_many over keys k0..k<N-1> with
a RedisJournal; prints one line per outcome ("launched KEY ID" / "resumed KEY ID" /
"error KEY TYPE") and "done".
"""

from __future__ import annotations

import asyncio
import sys

from transactionlink_async import LaunchRequest, OrganizationToken, TransactionLink
from transactionlink_async.journal import RedisJournal


async def main(
    base_url: str, token: str, redis_url: str, name: str, count: int, concurrency: int
) -> None:
    requests = (
        LaunchRequest(workflow_definition_id="kyc", locale="en", parameters={"n": n}, key=f"k{n}")
        for n in range(count)
    )
    async with (
        TransactionLink(OrganizationToken(token), base_url=base_url) as tl,
        RedisJournal(redis_url, name, lease=1.0) as journal,
    ):
        print("ready", flush=True)
        # All start together, once every process is up.
        await asyncio.to_thread(sys.stdin.readline)
        async for outcome in tl.workflows.launch_many(
            requests, concurrency=concurrency, journal=journal
        ):
            key = outcome.request.key
            if outcome.execution is not None:
                kind = "resumed" if outcome.resumed else "launched"
                print(kind, key, outcome.execution.id, flush=True)
            else:
                print("error", key, type(outcome.error).__name__, outcome.error, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    url, token, redis_url, name, count, concurrency = sys.argv[1:7]
    asyncio.run(main(url, token, redis_url, name, int(count), int(concurrency)))
