"""SqliteJournal: the embedded launch journal, one SQLite file, all of its work off the loop."""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

from .._threads import run_blocking, start
from ..errors import ClientClosedError
from ._base import Claim, Journal
from ._group import GroupCommit
from ._model import JournalEntry, KeyState, Lookup
from ._sqlite_store import SqliteStore
from ._states import Change

__all__ = ["SqliteJournal"]

T = TypeVar("T")

_PAGE = 500


class SqliteJournal(Journal):
    """A launch journal in one SQLite file (standard library `sqlite3`, WAL mode).

    Every change is committed (and synced to disk) before the call returns, so a process
    killed at any instant leaves a journal that says what was claimed and what was
    launched. Concurrent changes share one commit. The file is opened on first use and
    held by this process until `aclose()`; a second process gets `JournalBusyError`
    (share a batch between processes with `RedisJournal`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
        self._path = os.fspath(path)
        if not self._path:
            raise ValueError("path must not be empty")
        self._store = SqliteStore(self._path, owner=secrets.token_hex(8))
        self._group: GroupCommit[Callable[[], Any]] = GroupCommit(
            functools.partial(start, self._store.run_batch)
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteJournal({self._path!r})"

    @property
    def path(self) -> str:
        return self._path

    async def _submit(
        self,
        op: Callable[[], T],
        undo: Callable[[T], Callable[[], object] | None] | None = None,
    ) -> T:
        if self._closed:
            raise ClientClosedError(f"the journal {self._path!r} is closed; open a new one")
        return cast(T, await self._group.submit(op, undo=undo))

    async def _lookup(self, keys: list[str], run: str) -> list[Lookup]:
        return await self._submit(functools.partial(self._store.lookup, keys, run))

    async def _get_many(self, keys: list[str]) -> list[JournalEntry | None]:
        return await self._submit(functools.partial(self._store.get_many, keys))

    async def _claim(self, key: str) -> Claim:
        def undo(claimed: Claim) -> Callable[[], object] | None:
            # Cancelled before sending: the claim is ours and nothing went out.
            if not claimed.won:
                return None
            return functools.partial(self._store.change, key, Change(kind="released"))

        return await self._submit(functools.partial(self._store.claim, key), undo)

    async def _change(self, key: str, change: Change) -> None:
        await self._submit(functools.partial(self._store.change, key, change))

    async def _end_run(self, run: str) -> None:
        await self._submit(functools.partial(self._store.end_run, run))

    async def entries(self, state: KeyState | None = None) -> AsyncIterator[JournalEntry]:
        after = ""
        while True:
            page = await self._submit(functools.partial(self._store.page, state, after, _PAGE))
            for entry in page:
                yield entry
            if len(page) < _PAGE:
                return
            after = page[-1].key

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._group.drain()
        await run_blocking(self._store.close)
