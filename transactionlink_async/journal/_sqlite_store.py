"""The SQLite side of SqliteJournal: blocking, run only in a worker thread, one batch at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._base import Claim
from ._errors import JournalBusyError, JournalError
from ._group import Outcome
from ._model import STATE_BY_VALUE, JournalEntry, KeyState, Lookup, decode_execution, status_of
from ._states import Change, Record, apply, view

__all__ = ["SqliteStore"]

FORMAT = "1"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS journal_entries (
        key TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        execution_id TEXT,
        execution TEXT,
        status TEXT,
        result TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS journal_entries_state ON journal_entries (state, key)",
    """CREATE TABLE IF NOT EXISTS journal_meta (
        name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL
    ) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO journal_meta VALUES ('format', '1')",  # FORMAT
    # Which keys each batch run has looked up: spotting a key given twice in one batch
    # without holding every key of an endless input in memory. Temporary: gone on close.
    """CREATE TEMP TABLE IF NOT EXISTS journal_seen (
        run TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (run, key)
    ) WITHOUT ROWID""",
)

_COLUMNS = "key, state, owner, execution_id, execution, status, result"
_UPSERT = (
    f"INSERT INTO journal_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - fixed SQL
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, owner = excluded.owner, "
    "execution_id = excluded.execution_id, execution = excluded.execution, "
    "status = excluded.status, result = excluded.result"
)
# The two transitions every launch makes, each one statement (they mirror `_states.claim`
# and `_states.launched`; the model tests hold them to it). In an upsert's SET, every
# `journal_entries.*` is the row as it was.
_CLAIM = (
    "INSERT INTO journal_entries (key, state, owner) VALUES (?, 'claimed', ?) "
    "ON CONFLICT (key) DO UPDATE SET state = 'claimed', owner = excluded.owner, "
    "execution_id = NULL, execution = NULL, status = NULL, result = NULL "
    "WHERE journal_entries.state = 'released'"
)
_LAUNCHED = (
    "INSERT INTO journal_entries (key, state, execution_id, execution) "
    "VALUES (?, 'launched', ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET state = 'launched', owner = NULL, "
    "execution_id = excluded.execution_id, "
    # Recorded again for the same execution: keep what later steps added.
    "execution = CASE WHEN journal_entries.state = 'launched' "
    "AND journal_entries.execution_id = excluded.execution_id "
    "AND excluded.execution IS NULL THEN journal_entries.execution "
    "ELSE excluded.execution END, "
    "status = CASE WHEN journal_entries.state = 'launched' "
    "AND journal_entries.execution_id = excluded.execution_id "
    "THEN journal_entries.status END, "
    "result = CASE WHEN journal_entries.state = 'launched' "
    "AND journal_entries.execution_id = excluded.execution_id "
    "THEN journal_entries.result END"
)
_SELECT_ONE = f"SELECT {_COLUMNS} FROM journal_entries WHERE key = ?"  # noqa: S608 - fixed SQL

#: Keys per IN (...) query: well under SQLite's limit on bound parameters.
_CHUNK = 500


def _record(row: Sequence[Any]) -> Record:
    return Record(
        state=STATE_BY_VALUE[row[1]],
        owner=row[2],
        execution_id=row[3],
        execution=row[4],
        status=row[5],
        result=row[6],
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class SqliteStore:
    """One connection to the journal file, opened on first use and held exclusively.

    SQLite's exclusive locking mode keeps the file to this process while it is open: a
    claim left by anyone else was left by a process that is gone, so it is in doubt. The
    operating system drops the lock when a process dies, so a rerun opens at once.
    """

    def __init__(self, path: str, owner: str) -> None:
        self.path = path
        self.owner = owner
        self._conn: sqlite3.Connection | None = None

    # -- the connection ----------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {self.path!r}: {exc}") from exc
        try:
            self._prepare(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise JournalBusyError(
                    f"the journal {self.path!r} is open elsewhere (another process, or "
                    "another SqliteJournal); wait for it to close, or use RedisJournal to "
                    "run one batch from several processes"
                ) from None
            raise JournalError(f"cannot open the journal {self.path!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(
                f"{self.path!r} is not a journal (not an SQLite database: {exc})"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # EXCLUSIVE before WAL: the WAL index then lives in this process's memory, so the
        # journal is one file (plus its WAL while open) and no other process reads it
        # half-written.
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(
                f"the journal {self.path!r} cannot use SQLite's WAL mode here ({mode}); "
                "put it on a local filesystem"
            )
        # FULL: a claim is on disk before its request is sent, even if the machine (not
        # just the process) goes down.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA temp_store = FILE")
        # The first write takes the exclusive lock, held until close.
        conn.execute("BEGIN IMMEDIATE")
        self._check_is_journal(conn)
        for statement in _SCHEMA:
            conn.execute(statement)
        found = conn.execute("SELECT value FROM journal_meta WHERE name = 'format'").fetchone()
        if found is None or found[0] != FORMAT:
            raise JournalError(
                f"the journal {self.path!r} has format {found and found[0]!r}, and this "
                f"version of the SDK reads format {FORMAT!r}: upgrade transactionlink-async"
            )
        conn.execute("COMMIT")

    def _check_is_journal(self, conn: sqlite3.Connection) -> None:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables and "journal_meta" not in tables:
            raise JournalError(
                f"{self.path!r} is an SQLite database of something else, not a journal; "
                "give the journal a file of its own"
            )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- batches -----------------------------------------------------------------------------

    def run_batch(self, ops: Sequence[Callable[[], Any]]) -> list[Outcome]:
        """Run `ops` in one transaction: all their changes are committed together, or none.

        An operation decides before it writes, so one that refuses (raises) has written
        nothing and the others go on; an SQLite error fails the whole batch.
        """
        if self._conn is None:
            self._conn = self._open()
        conn = self._conn
        outcomes: list[Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                try:
                    outcomes.append((True, op()))
                except sqlite3.Error:
                    raise
                except Exception as exc:
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    # -- operations (each runs inside run_batch) ---------------------------------------------

    def _alive(self, owner: str) -> bool:
        return owner == self.owner

    def _write(self, key: str, record: Record) -> None:
        assert self._conn is not None
        self._conn.execute(
            _UPSERT,
            (
                key,
                record.state.value,
                record.owner,
                record.execution_id,
                record.execution,
                record.status,
                record.result,
            ),
        )

    def _entries(self, keys: Sequence[str]) -> dict[str, JournalEntry]:
        """The entries of `keys` that exist, read straight from their rows: `view` for
        the rows a resume reads by the hundred thousand (the model tests hold it to it)."""
        assert self._conn is not None
        found: dict[str, JournalEntry] = {}
        owner = self.owner
        for chunk in _chunks(keys):
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT {_COLUMNS} FROM journal_entries WHERE key IN ({marks})"  # noqa: S608 - only placeholders
            for key, state, claimer, execution_id, execution, status, result in self._conn.execute(
                query, tuple(chunk)
            ):
                kind = STATE_BY_VALUE[state]
                if kind is KeyState.CLAIMED and claimer != owner:
                    kind = KeyState.IN_DOUBT  # its process is gone: we hold the file
                found[key] = JournalEntry(
                    key=key,
                    state=kind,
                    execution_id=execution_id,
                    execution=None if execution is None else decode_execution(execution),
                    status=status_of(status),
                    result=result,
                )
        return found

    def get_many(self, keys: Sequence[str]) -> list[JournalEntry | None]:
        found = self._entries(keys)
        return [found.get(key) for key in keys]

    def lookup(self, keys: Sequence[str], run: str) -> list[Lookup]:
        assert self._conn is not None
        seen: set[str] = set()
        for chunk in _chunks(keys):
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT key FROM journal_seen WHERE run = ? AND key IN ({marks})"  # noqa: S608 - only placeholders
            seen.update(row[0] for row in self._conn.execute(query, (run, *chunk)))
        self._conn.executemany(
            "INSERT OR IGNORE INTO journal_seen (run, key) VALUES (?, ?)",
            ((run, key) for key in keys),
        )
        found = self._entries(keys)
        lookups = []
        for key in keys:
            lookups.append(Lookup(found.get(key), repeated=key in seen))
            seen.add(key)  # the same key twice in one call: the second is repeated too
        return lookups

    def _read_one(self, key: str) -> Record | None:
        assert self._conn is not None
        row = self._conn.execute(_SELECT_ONE, (key,)).fetchone()
        return None if row is None else _record(row)

    def claim(self, key: str) -> Claim:
        conn = self._conn
        assert conn is not None
        before = conn.total_changes
        conn.execute(_CLAIM, (key, self.owner))
        if conn.total_changes != before:
            return Claim(won=True, entry=JournalEntry(key=key, state=KeyState.CLAIMED))
        return Claim(won=False, entry=view(key, self._read_one(key), self._alive))

    def change(self, key: str, change: Change) -> None:
        if change.kind == "launched":
            assert self._conn is not None
            self._conn.execute(_LAUNCHED, (key, change.execution_id, change.execution))
            return
        record = self._read_one(key)
        new = apply(record, change, me=self.owner, alive=self._alive, key=key)
        if new is not None:
            self._write(key, new)

    def end_run(self, run: str) -> None:
        assert self._conn is not None
        self._conn.execute("DELETE FROM journal_seen WHERE run = ?", (run,))

    def page(self, state: KeyState | None, after: str, limit: int) -> list[JournalEntry]:
        """Up to `limit` entries with keys after `after`, in key order."""
        assert self._conn is not None
        args: tuple[str, ...] = ()
        if state is None:
            where = ""
        elif state is KeyState.IN_DOUBT:
            where = "(state = 'in_doubt' OR (state = 'claimed' AND owner IS NOT ?)) AND "
            args = (self.owner,)
        elif state is KeyState.CLAIMED:
            where, args = "state = 'claimed' AND owner = ? AND ", (self.owner,)
        else:
            where, args = "state = ? AND ", (state.value,)
        query = (
            f"SELECT {_COLUMNS} FROM journal_entries WHERE {where}key > ? "  # noqa: S608 - fixed SQL
            "ORDER BY key LIMIT ?"
        )
        entries = []
        for row in self._conn.execute(query, (*args, after, limit)):
            entry = view(row[0], _record(row), self._alive)
            assert entry is not None
            entries.append(entry)
        return entries
