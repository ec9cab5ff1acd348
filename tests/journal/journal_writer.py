"""A process that writes a journal as fast as it can and prints each change once it returned.

`python journal_writer.py PATH FIRST CONCURRENCY`: keys k<FIRST>, k<FIRST+1>, ... each go
claimed -> launched (+ status, + result) / released / in doubt, `CONCURRENCY` at a time,
until killed. A line `<event> <key>` is printed (and flushed) after the journal call for
it returned: everything printed must be in the journal after a kill.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from transactionlink_async import WorkflowExecution
from transactionlink_async.journal import SqliteJournal


def say(event: str, key: str) -> None:
    sys.stdout.write(f"{event} {key}\n")
    sys.stdout.flush()


async def work(journal: SqliteJournal, numbers: itertools.count[int]) -> None:
    for number in numbers:
        key = f"k{number}"
        if not (await journal.claim(key)).won:
            say("lost", key)
            continue
        say("claimed", key)
        fate = number % 5
        if fate == 3:
            await journal.record_released(key)
            say("released", key)
        elif fate == 4:
            await journal.record_in_doubt(key)
            say("in_doubt", key)
        else:
            await journal.record_launched(key, WorkflowExecution(id=f"x-{key}", status="CREATED"))
            say("launched", key)
            await journal.record_status(key, "COMPLETED")
            say("finished", key)
            await journal.record_result(key, f"results/{key}.json")
            say("downloaded", key)


async def main(path: str, first: int, concurrency: int) -> None:
    numbers = itertools.count(first)
    async with SqliteJournal(path) as journal:
        await journal.get("k0")  # opened (and locked) before saying so
        say("ready", "-")
        await asyncio.gather(*(work(journal, numbers) for _ in range(concurrency)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
