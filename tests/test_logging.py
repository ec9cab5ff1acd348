"""The SDK's logger is silent until the application configures logging (in a fresh process)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import transactionlink_async

ROOT = Path(__file__).resolve().parents[1]

# A wait that meets a status the SDK does not know: the one place that logs a WARNING.
SCRIPT = """
import logging, sys
import anyio
from transactionlink_async import OrganizationToken, PollPolicy, TransactionLink
from transactionlink_async.testing import FakeTransactionLink

async def main() -> None:
    async with FakeTransactionLink() as fake:
        fake.define_workflow("odd", statuses=("MYSTERY-STATUS", "COMPLETED"))
        tl = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)
        async with tl:
            launched = await tl.workflows.initialise(
                workflow_definition_id="odd", locale="en", parameters={}
            )
            poll = PollPolicy(initial=0.01, maximum=0.01, jitter=0)
            done = await tl.workflows.wait_for_completion(launched.id, poll=poll, timeout=10)
        assert str(done.status) == "COMPLETED", done.status

if sys.argv[1] == "configured":
    logging.basicConfig()
anyio.run(main)
print("ok")
"""


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("mode", ["unconfigured", "configured"])
def test_an_unknown_status_warning_reaches_stderr_only_when_logging_is_configured(
    mode: str,
) -> None:
    done = run(mode)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
    if mode == "configured":
        # The script does log the warning: the application's handler shows it.
        assert "MYSTERY-STATUS" in done.stderr
        assert "WARNING:transactionlink_async" in done.stderr
    else:
        assert done.stderr == ""


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger(transactionlink_async.__name__).handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
