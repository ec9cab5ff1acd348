"""A chat bot's verification step: start one interactive workflow, send the person its link,
await the outcome, and answer with the decision.

    TRANSACTIONLINK_TOKEN=tot_... TRANSACTIONLINK_WORKFLOW=<definition id> \\
        python examples/bot.py <user id> [--timeout SECONDS]

Environment: TRANSACTIONLINK_TOKEN (or TRANSACTIONLINK_API_KEY and
TRANSACTIONLINK_API_SECRET), TRANSACTIONLINK_BASE_URL (optional), TRANSACTIONLINK_WORKFLOW
(the workflow definition to run), TRANSACTIONLINK_LOCALE (optional, default en).
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio

from transactionlink_async import TransactionLink, WaitTimeoutError, WorkflowStatus


async def send_message(user_id: str, text: str) -> None:
    """Stands in for the chat platform's API."""
    print(f"to {user_id}: {text}", flush=True)


async def verify(tl: TransactionLink, user_id: str, *, max_wait: float) -> bool:
    """Run the verification for one user; tells whether they passed."""
    execution = await tl.workflows.initialise(
        workflow_definition_id=os.environ["TRANSACTIONLINK_WORKFLOW"],
        locale=os.environ.get("TRANSACTIONLINK_LOCALE", "en"),
        parameters={"userId": user_id},
    )
    await send_message(user_id, f"Please verify your identity here: {execution.link}")
    try:
        # Returns once the status is final: COMPLETED, or FAILED, EXPIRED, CANCELLED...
        done = await tl.workflows.wait_for_completion(execution.id, timeout=max_wait)
    except WaitTimeoutError:
        await tl.workflows.cancel(execution.id)  # the link stops working
        await send_message(user_id, "The verification link has expired; ask me for a new one.")
        return False
    if done.status != WorkflowStatus.COMPLETED:
        await send_message(user_id, f"The verification ended: {done.status}.")
        return False
    result = await tl.workflows.get_result(done.id)
    decision = result.get("decision", "UNKNOWN") if isinstance(result, dict) else "UNKNOWN"
    await send_message(user_id, f"Thank you! Decision: {decision}.")
    return decision == "APPROVED"


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="verify one user through a workflow")
    parser.add_argument("user_id")
    parser.add_argument("--timeout", type=float, default=30 * 60, help="seconds (default 1800)")
    args = parser.parse_args(argv)
    async with TransactionLink.from_env() as tl:
        passed = await verify(tl, args.user_id, max_wait=args.timeout)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1:]))
