"""Cancelling a download while one of its disk operations runs in a worker thread."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import FAST_RETRY

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async._download.atomic import AtomicFile
from transactionlink_async.testing import FakeTransactionLink, GeneratedJson

pytestmark = pytest.mark.anyio

SIZE = 300_000
HOW = [
    "task.cancel",
    "task.cancel twice",
    pytest.param(
        "asyncio.timeout",
        marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+"),
    ),
    "anyio scope",
]


class Gate:
    """Holds a patched blocking call in its worker thread until the test lets it go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.used = False

    def first_call(self) -> bool:
        """True once: the call to hold (later calls go straight through)."""
        if self.used:
            return False
        self.used = True
        return True

    def hold(self) -> None:
        self.entered.set()
        assert self.release.wait(10), "the test never released the gate"

    async def reached(self) -> None:
        with anyio.fail_after(5):
            while not self.entered.is_set():  # noqa: ASYNC110 - a thread sets it
                await anyio.sleep(0.005)


async def cancel_while_held(gate: Gate, how: str, call: Callable[[], Awaitable[Any]]) -> str:
    """Run `call` in a task, cancel it `how` once `gate` holds its thread; how it ended.

    Checks that the task does not end while the thread still runs.
    """
    scopes: list[Any] = []

    async def caller() -> str:
        if how == "asyncio.timeout":
            try:
                async with asyncio.timeout(None) as timeout:  # type: ignore[attr-defined]
                    scopes.append(timeout)
                    await call()
            except TimeoutError:
                return "timed out"
        elif how == "anyio scope":
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await call()
            if scope.cancelled_caught:
                return "cancelled"
        else:
            await call()
        return "finished"

    task = asyncio.create_task(caller())
    await gate.reached()
    if how == "asyncio.timeout":
        scopes[0].reschedule(asyncio.get_running_loop().time())
    elif how == "anyio scope":
        scopes[0].cancel()
    else:
        task.cancel()
    await asyncio.sleep(0.05)
    # The thread is still inside the file operation: the caller must not go on yet.
    assert not task.done(), "the cancel abandoned a file operation still running"
    if how == "task.cancel twice":
        task.cancel()
        await asyncio.sleep(0.02)
        assert not task.done()
    gate.release.set()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"


def tl_for(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        retry=FAST_RETRY,
    )


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def expected_outcome(how: str) -> str:
    return "timed out" if how == "asyncio.timeout" else "cancelled"


@pytest.mark.parametrize("how", HOW)
async def test_cancel_during_the_fsync_waits_for_it_and_leaves_nothing(
    fake: FakeTransactionLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=SIZE)
    gate = Gate()
    real_fsync = os.fsync
    failures: list[OSError] = []

    def fsync(fd: int) -> None:
        if gate.first_call():
            gate.hold()
            try:
                real_fsync(fd)  # the descriptor must still be ours
            except OSError as exc:
                failures.append(exc)
                raise
        else:
            real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    async with tl_for(fake) as tl:
        destination = tmp_path / "r.json"
        outcome = await cancel_while_held(
            gate, how, lambda: tl.workflows.download_result(execution_id, destination)
        )
        # Opened while the download's descriptor could have been freed: still usable.
        with (tmp_path / "other.txt").open("w") as other:
            other.write("x")
    assert outcome == expected_outcome(how)
    assert failures == []
    # Cancelled before the rename: nothing at the destination, no temporary file.
    assert names(tmp_path) == ["other.txt"]


@pytest.mark.parametrize("how", HOW)
async def test_cancel_during_the_rename_leaves_the_whole_file_or_nothing(
    fake: FakeTransactionLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=SIZE)
    gate = Gate()
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if gate.first_call():
            gate.hold()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    async with tl_for(fake) as tl:
        destination = tmp_path / "r.json"
        outcome = await cancel_while_held(
            gate, how, lambda: tl.workflows.download_result(execution_id, destination)
        )
    assert outcome == expected_outcome(how)
    # The rename had begun: the complete file is in place, and no temporary file is left.
    assert names(tmp_path) == ["r.json"]
    assert destination.read_bytes() == b"".join(GeneratedJson(SIZE).read(0, SIZE))


@pytest.mark.parametrize("how", HOW)
async def test_cancel_while_the_temporary_file_is_created_removes_it(
    fake: FakeTransactionLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    execution_id = fake.create_execution()
    gate = Gate()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        made = real_mkstemp(*args, **kwargs)
        if gate.first_call():
            gate.hold()  # created, not yet handed back: e.g. a slow network file system
        return made

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    async with tl_for(fake) as tl:
        outcome = await cancel_while_held(
            gate, how, lambda: tl.workflows.download_result(execution_id, tmp_path / "r.json")
        )
    assert outcome == expected_outcome(how)
    assert names(tmp_path) == []
    assert fake.journal == []  # the file comes first, so nothing was asked


@pytest.mark.parametrize("how", HOW)
async def test_cancel_during_a_batch_write_waits_for_it_then_removes_the_file(
    fake: FakeTransactionLink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=SIZE)
    gate = Gate()
    real_write = AtomicFile.write

    def write(self: AtomicFile, chunks: list[bytes]) -> int:
        if gate.first_call():
            gate.hold()
        return real_write(self, chunks)

    monkeypatch.setattr(AtomicFile, "write", write)
    async with tl_for(fake) as tl:
        outcome = await cancel_while_held(
            gate,
            how,
            lambda: tl.workflows.download_result(
                execution_id, tmp_path / "r.json", chunk_size=64 * 1024
            ),
        )
    assert outcome == expected_outcome(how)
    assert names(tmp_path) == []
    gc.collect()  # an outcome nobody retrieved is reported when its future is collected
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
