"""One worker process of the multi-process tests: a client of the fake, sharing Redis.

    python -m tests.coordination.worker BASE_URL KEY SECRET REDIS_URL NAME [--wait ID]
        [--calls-for SECONDS]

Prints JSON lines: {"ready": ...} once its first calls are done (and, with --wait, its wait
has begun), then {"done": ...} with what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from transactionlink_async import ApiKey, PollPolicy, TransactionLink, TransactionLinkError
from transactionlink_async.coordination import RedisCoordination

SLOW_POLL = PollPolicy(initial=30, multiplier=1.0, maximum=30, jitter=0.0)


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def connected(coordination: RedisCoordination) -> None:
    for _ in range(1000):
        if coordination.connected:
            return
        await asyncio.sleep(0.01)
    raise SystemExit("never connected to Redis")


async def main(args: argparse.Namespace) -> None:
    coordination = RedisCoordination(args.redis_url, timeout=2.0)
    async with TransactionLink(
        ApiKey(args.key, args.secret),
        base_url=args.base_url,
        user_agent=args.name,
        coordination=coordination,
    ) as tl:
        execution_id = args.wait or args.probe
        await asyncio.gather(*(tl.workflows.get(execution_id) for _ in range(3)))
        wait = None
        if args.wait:
            wait = asyncio.ensure_future(
                tl.workflows.wait_for_completion(args.wait, poll=SLOW_POLL, timeout=20)
            )
        await connected(coordination)
        await asyncio.sleep(0.1)  # the wait is asleep by now
        say(ready=args.name)
        errors = calls = 0
        until = time.monotonic() + args.calls_for
        while time.monotonic() < until:
            try:
                await tl.workflows.get(execution_id)
                calls += 1
            except TransactionLinkError as exc:
                errors += 1
                say(error=type(exc).__name__)
            await asyncio.sleep(0.05)
        waited = None
        if wait is not None:
            execution = await wait
            waited = str(execution.status)
        say(done=args.name, calls=calls, errors=errors, status=waited, at=time.monotonic())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("base_url", "key", "secret", "redis_url", "name"):
        parser.add_argument(name)
    parser.add_argument("--wait")
    parser.add_argument("--probe", default="probe")
    parser.add_argument("--calls-for", type=float, default=0.0)
    asyncio.run(main(parser.parse_args()))
