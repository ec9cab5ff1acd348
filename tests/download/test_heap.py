"""A download's freed batches stay in the C heap instead of being faulted in anew."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _glibc(), reason="the heap's threshold is glibc's")

# Batches of 4 MiB in chunks of 256 KiB, made and freed as a download does, counted
# after a first round so that only memory faulted in again is counted.
CHURN = """
import os, resource, sys
from transactionlink_async._download.heap import keep_freed_batches
if sys.argv[1] == "keep":
    keep_freed_batches(4 * 1024 * 1024)
def churn():
    for _ in range(32):
        batch = [os.urandom(16) * 16384 for _ in range(16)]
        del batch
churn()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CHURN, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def test_freed_batches_are_reused_without_page_faults() -> None:
    # Without it, each 4 MiB batch goes back to the system and its 1,024 pages fault in
    # again for the next one: 32 batches, some 32,000 faults.
    assert page_faults("plain") > 16_000
    assert page_faults("keep") < 1_000

