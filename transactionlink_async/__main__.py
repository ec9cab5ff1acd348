"""The command line: `python -m transactionlink_async demo` runs the whole flow locally."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import anyio

from . import ApiKey, TransactionLink
from .testing import FakeTransactionLink


async def demo() -> int:
    """Authenticate, create a case, run and initialise workflows, and wait for them."""
    started = time.monotonic()
    async with FakeTransactionLink(access_token_lifetime=3.0) as fake:
        fake.define_workflow("kyc", statuses=("RUNNING", "AWAITING", "COMPLETED"))
        print(f"fake TransactionLink API listening on {fake.base_url}")
        credentials = ApiKey(fake.api_key, fake.api_secret)
        async with TransactionLink(credentials, base_url=fake.base_url) as tl:
            case = await tl.cases.create(first_name="Ada", last_name="Lovelace")
            print(f"case {case.case_id} created")
            v1 = await tl.workflows.run(workflow_definition_id="kyc", case_id=case.case_id)
            print(f"v1 workflow {v1.id} started: {v1.status}")
            v3 = await tl.workflows.initialise(workflow_definition_id="kyc", locale="en")
            print(f"v3 workflow {v3.id} initialised: {v3.status}")
            await anyio.sleep(2.0)  # long enough for the 3 s token to be renewed early
            for execution_id in (v1.id, v3.id):
                execution = await tl.workflows.get(execution_id)
                while not execution.is_final:
                    print(f"  {execution_id}: {execution.status}")
                    execution = await tl.workflows.get(execution_id)
                result = await tl.workflows.get_result(execution_id)
                print(f"  {execution_id}: {execution.status}, result {result}")
        print(
            f"authorize calls: {fake.count('POST', '/auth/authorize')}, "
            f"refresh calls: {fake.count('POST', '/auth/refresh')}, "
            f"requests in all: {len(fake.journal)}, {time.monotonic() - started:.1f}s"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="transactionlink", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the whole flow against the embedded fake server")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return anyio.run(demo)
    return 2  # pragma: no cover - argparse refuses unknown commands


if __name__ == "__main__":
    sys.exit(main())
