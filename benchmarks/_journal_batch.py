"""The crash campaign's batch, in its own process: `python -m benchmarks._journal_batch URL
TOKEN JOURNAL KEYS CONCURRENCY` launches keys k0..k<KEYS-1> through a SqliteJournal."""

from __future__ import annotations

import asyncio
import sys

from transactionlink_async import LaunchRequest, OrganizationToken, TransactionLink
from transactionlink_async.journal import SqliteJournal


async def main(base_url: str, token: str, path: str, keys: int, concurrency: int) -> None:
    requests = (
        LaunchRequest(
            workflow_definition_id="bench", locale="en", parameters={"key": f"k{n}"}, key=f"k{n}"
        )
        for n in range(keys)
    )
    async with (
        TransactionLink(OrganizationToken(token), base_url=base_url) as tl,
        SqliteJournal(path) as journal,
    ):
        print("ready", flush=True)
        async for _ in tl.workflows.launch_many(requests, concurrency=concurrency, journal=journal):
            pass
    print("done", flush=True)


if __name__ == "__main__":
    url, token, path, keys, concurrency = sys.argv[1:6]
    asyncio.run(main(url, token, path, int(keys), int(concurrency)))
