"""Freed body memory (a download's batches, socket reads) stays in the C heap."""

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
batch_mib = int(sys.argv[2])
if sys.argv[1] == "keep":
    keep_freed_batches(batch_mib * 1024 * 1024)
def churn():
    for _ in range(128 // batch_mib):
        batch = [os.urandom(16) * 16384 for _ in range(4 * batch_mib)]
        del batch
churn()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _plain_allocator() -> dict[str, str]:
    """The environment with the allocator as it comes: no preloaded one, no tuning."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    return env


def faults_in_child(script: str, *args: str) -> int:
    """The page faults `script` counts in a fresh interpreter, which it prints last."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=_plain_allocator(),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


@pytest.mark.parametrize("batch_mib", [4, 16])
def test_freed_batches_are_reused_without_page_faults(batch_mib: int) -> None:
    # Without it, each batch goes back to the system and its pages fault in again for
    # the next one: 128 MiB of batches, some 32,000 faults.
    assert faults_in_child(CHURN, "plain", str(batch_mib)) > 16_000
    assert faults_in_child(CHURN, "keep", str(batch_mib)) < 1_000


# Small answers read from a socket as asyncio reads them: into a fresh 256 KiB buffer,
# shrunk to the bytes that came. A mapped buffer shrinks to a mapping of a page or two,
# whose freeing never raises glibc's threshold: each read maps and faults anew.
READS = """
import resource, socket, sys
if sys.argv[1] == "client":
    from transactionlink_async import OrganizationToken, TransactionLink
    TransactionLink(OrganizationToken("tot_x"))
ours, theirs = socket.socketpair()
def reads():
    for _ in range(200):
        theirs.send(b"x" * 700)
        answer = ours.recv(256 * 1024)
        del answer
reads()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
reads()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def test_a_client_keeps_each_reads_buffer_in_the_heap() -> None:
    # Mapped of its own, each read's buffer is fresh pages: 200 reads, at least 200 faults
    # (the pages written before the buffer shrinks), and three system calls each.
    assert faults_in_child(READS, "plain") >= 200
    assert faults_in_child(READS, "client") < 20
