"""SqliteJournal: durable across reopening, one process at a time, no secrets, clean close."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

from transactionlink_async import ClientClosedError, WorkflowExecution, WorkflowStatus
from transactionlink_async.journal import (
    JournalBusyError,
    JournalError,
    KeyState,
    SqliteJournal,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def names_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def execution(execution_id: str) -> WorkflowExecution:
    return WorkflowExecution(
        id=execution_id,
        status=WorkflowStatus.CREATED,
        workflow_definition_id="kyc",
        token="tok-secret-123",
        link="https://hosted.example/run?token=tok-secret-123",
    )


async def test_what_was_recorded_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with SqliteJournal(path) as journal:
        assert (await journal.claim("launched")).won
        await journal.record_launched("launched", execution("x-1"))
        await journal.record_status("launched", WorkflowStatus.COMPLETED)
        await journal.record_result("launched", "results/x-1.json")
        assert (await journal.claim("sent")).won
        assert (await journal.claim("refused")).won
        await journal.record_released("refused")
        # Our own claim is in flight, not in doubt, while this journal is open.
        assert (await journal.get("sent")).state is KeyState.CLAIMED  # type: ignore[union-attr]
    async with SqliteJournal(path) as journal:
        launched = await journal.get("launched")
        assert launched is not None
        assert launched.state is KeyState.LAUNCHED
        assert launched.execution_id == "x-1"
        assert launched.execution is not None
        assert launched.execution.workflow_definition_id == "kyc"
        assert launched.status is WorkflowStatus.COMPLETED
        assert launched.result == "results/x-1.json"
        # The batch that claimed it is gone without an answer: it may have been sent.
        sent = await journal.get("sent")
        assert sent is not None
        assert sent.state is KeyState.IN_DOUBT
        assert not (await journal.claim("sent")).won
        assert (await journal.claim("refused")).won
        assert await journal.get("never") is None


async def test_no_secret_of_an_execution_is_written(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with SqliteJournal(path) as journal:
        await journal.record_launched("k", execution("x-1"))
        entry = await journal.get("k")
    assert entry is not None
    assert entry.execution is not None
    assert entry.execution.token is None
    assert entry.execution.link is None
    assert b"tok-secret-123" not in path.read_bytes()


async def test_the_journal_is_one_file_once_closed(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with SqliteJournal(path) as journal:
        await journal.claim("k")
        assert "run.db-wal" in names_in(tmp_path)
    assert names_in(tmp_path) == ["run.db"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


async def test_a_second_journal_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with SqliteJournal(path) as journal:
        await journal.claim("k")
        with pytest.raises(JournalBusyError, match="RedisJournal"):
            async with SqliteJournal(path) as other:
                await other.get("k")
        with anyio.fail_after(60):
            opened = await anyio.run_process(
                [sys.executable, "-c", OPEN_AND_GET, str(path)], cwd=ROOT, check=False
            )
        assert opened.returncode == 3, opened.stderr.decode()
    # Closed: the file is free again.
    async with SqliteJournal(path) as journal:
        assert (await journal.get("k")).state is KeyState.IN_DOUBT  # type: ignore[union-attr]


OPEN_AND_GET = """
import asyncio, sys
from transactionlink_async.journal import JournalBusyError, SqliteJournal
async def main():
    async with SqliteJournal(sys.argv[1]) as journal:
        await journal.get("k")
try:
    asyncio.run(main())
except JournalBusyError:
    sys.exit(3)
"""


async def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, " * 100)
    with pytest.raises(JournalError, match="not a journal"):
        async with SqliteJournal(garbage) as journal:
            await journal.get("k")
    assert garbage.read_bytes() == b"not a database, " * 100

    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(JournalError, match="something else"):
        async with SqliteJournal(other) as journal:
            await journal.get("k")
    with sqlite3.connect(other) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    conn.close()
    assert tables == ["users"]


async def test_a_journal_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    async with SqliteJournal(path) as journal:
        await journal.get("k")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE journal_meta SET value = '99' WHERE name = 'format'")
    conn.close()
    with pytest.raises(JournalError, match="upgrade"):
        async with SqliteJournal(path) as journal:
            await journal.get("k")


async def test_a_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot open"):
        async with SqliteJournal(tmp_path / "missing" / "run.db") as journal:
            await journal.get("k")


async def test_a_closed_journal_refuses_calls_and_closing_twice_is_harmless(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "run.db")
    await journal.claim("k")
    await journal.aclose()
    await journal.aclose()
    with pytest.raises(ClientClosedError):
        await journal.get("k")


async def test_closing_waits_for_the_changes_under_way(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    journal = SqliteJournal(path)
    claims = [asyncio.ensure_future(journal.claim(f"k{n}")) for n in range(50)]
    await asyncio.sleep(0)
    await journal.aclose()
    assert all(task.done() and task.result().won for task in claims)
    async with SqliteJournal(path) as reopened:
        assert len([e async for e in reopened.entries(KeyState.IN_DOUBT)]) == 50


async def test_a_claim_cancelled_before_sending_gives_the_key_back(tmp_path: Path) -> None:
    async with SqliteJournal(tmp_path / "run.db") as journal:
        task = asyncio.ensure_future(journal.claim("k"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        entry = await journal.get("k")
        assert entry is not None
        assert entry.state is KeyState.RELEASED
        assert (await journal.claim("k")).won


async def test_entries_are_listed_page_by_page_in_key_order(tmp_path: Path) -> None:
    async with SqliteJournal(tmp_path / "run.db") as journal:
        keys = [f"k{n:04}" for n in range(1200)]
        await asyncio.gather(*(journal.claim(key) for key in keys))
        for key in keys[::3]:
            await journal.record_launched(key, execution(f"x-{key}"))
        listed = [entry.key async for entry in journal.entries()]
        assert listed == keys
        launched = [entry.key async for entry in journal.entries(KeyState.LAUNCHED)]
        assert launched == keys[::3]
        claimed = [entry.key async for entry in journal.entries(KeyState.CLAIMED)]
        assert len(claimed) == 800
        assert [entry async for entry in journal.entries(KeyState.IN_DOUBT)] == []


async def test_bad_arguments_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        SqliteJournal(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        SqliteJournal("")
    async with SqliteJournal(tmp_path / "run.db") as journal:
        with pytest.raises(ValueError, match="empty"):
            await journal.resolve("", None)
        with pytest.raises(ValueError, match="control"):
            await journal.resolve("a\nb", None)
        with pytest.raises(ValueError, match="at most"):
            await journal.get("k" * 600)
        with pytest.raises(TypeError):
            await journal.resolve("k", 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="None"):
            await journal.resolve("k", " ")
        assert [entry async for entry in journal.entries()] == []
