"""RedisJournal: one launch journal shared by many processes, through redis-py's asyncio client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from .._lograte import RateLimitedLog
from ..coordination._connection import connect, redacted_url, require_redis
from ..coordination._tasks import cancel_and_wait
from ..errors import ClientClosedError
from ._base import Claim, Journal
from ._errors import JournalUnavailableError
from ._group import GroupCommit, Outcome
from ._model import STATE_BY_VALUE, JournalEntry, KeyState, Lookup, dump_json, load_json
from ._redis_scripts import APPLY
from ._states import Change, Record, entry_of, view

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisJournal"]

logger = logging.getLogger("transactionlink_async.journal")

T = TypeVar("T")

_NAME = re.compile(r"[A-Za-z0-9._:/-]{1,200}")
#: Keys per lookup script call: one short step of the Redis server's single thread.
_LOOKUP_CHUNK = 500
_SCAN_COUNT = 500


def _check_name(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} must be 1-200 letters, digits or '._:/-' (it names Redis keys), "
            f"got {value[:60]!r}"
        )
    return value


def _check_seconds(what: str, value: object, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{what} must be a finite number of seconds >= {minimum}, got {value}")
    return float(value)


def _load(raw: bytes | str) -> dict[str, Any]:
    data: dict[str, Any] = load_json(raw.decode() if isinstance(raw, bytes) else raw)
    return data


def _record(raw: bytes | str) -> Record:
    return _from_data(_load(raw))


def _from_data(data: dict[str, Any]) -> Record:
    return Record(
        state=STATE_BY_VALUE[data["s"]],
        owner=data.get("o"),
        execution_id=data.get("x"),
        execution=data.get("e"),
        status=data.get("f"),
        result=data.get("r"),
    )


def _entry(key: str, raw: bytes | str | None, live: object) -> JournalEntry | None:
    if raw is None:
        return None
    data = _load(raw)
    state = STATE_BY_VALUE[data["s"]]
    if state is KeyState.LAUNCHED:
        # What a resume reads 100,000 times: straight to the entry, no owner to check.
        return entry_of(key, state, data.get("x"), data.get("e"), data.get("f"), data.get("r"))
    return view(key, _from_data(data), lambda _owner: bool(live))


@attrs.frozen
class _Op:
    """One operation of a batch: its code and arguments (a JSON array), and how to read
    its reply."""

    args: list[Any]
    read: Callable[[Any], Outcome]


def _ok(reply: Any) -> Outcome:
    return (True, None)


def _lookup_op(keys: list[str], run: str | None) -> _Op:
    def read(reply: Any) -> Outcome:
        return (
            True,
            [
                Lookup(_entry(key, reply[3 * i + 1], reply[3 * i + 2]), repeated=bool(reply[3 * i]))
                for i, key in enumerate(keys)
            ],
        )

    return _Op(["G", keys] if run is None else ["L", run, keys], read)


def _claim_op(key: str) -> _Op:
    def read(reply: Any) -> Outcome:
        won, raw, live = reply
        if won:
            return (True, Claim(won=True, entry=JournalEntry(key=key, state=KeyState.CLAIMED)))
        return (True, Claim(won=False, entry=_entry(key, raw, live)))

    return _Op(["C", key], read)


def _change_op(key: str, change: Change) -> _Op:
    def read(reply: Any) -> Outcome:
        if reply in (b"ok", "ok"):
            return (True, None)
        if reply in (b"busy", "busy"):
            return (
                False,
                ValueError(
                    f"key {key!r} is being launched right now by a running batch; "
                    "resolve it once that batch has ended"
                ),
            )
        return (False, ValueError(f"the journal refused the change {change.kind!r}: {reply!r}"))

    return _Op(
        [
            "X",
            key,
            change.kind,
            change.execution_id or "",
            change.execution or "",
            change.status or "",
            change.result or "",
        ],
        read,
    )


class RedisJournal(Journal):
    """A launch journal in Redis, shared by every process that opens the same `name`.

    Claims are atomic (Lua scripts), so processes running one batch split it: each key
    is launched by exactly one of them. Each journal holds a lease that it renews every
    `lease / 3` seconds while open; the claims of a process that died or lost Redis for
    longer than `lease` are in doubt, never resent on their own (see `resolve`). Keep
    the Redis durable (`appendonly yes`, `appendfsync always`) for the journal to
    survive a Redis restart.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        namespace: str = "transactionlink",
        lease: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        require_redis()
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "the Redis URL must start with redis://, rediss:// or unix://, "
                "e.g. redis://127.0.0.1:6379/0"
            )
        self._url = url
        self._name = _check_name("name", name)
        _check_name("namespace", namespace)
        self._lease = _check_seconds("lease", lease, minimum=0.1)
        self._timeout = _check_seconds("timeout", timeout, minimum=0.01)
        self._owner = secrets.token_hex(8)
        # One hash tag for all of a journal's keys: a Redis Cluster keeps them on one node,
        # as the scripts need.
        prefix = f"{namespace}:journal:{{{name}}}:"
        self._entries = prefix + "entries"
        self._lease_prefix = prefix + "owner:"
        self._seen_prefix = prefix + "seen:"
        self._client: Redis | None = None
        self._apply: Any = None
        # One round trip at a time: what comes meanwhile goes in the next, one large batch.
        # Two at a time halved the batches' size and doubled their number, and each round
        # trip costs redis-py far more client CPU than an operation in it; a launch waits
        # for at most two round trips, short beside its HTTP request.
        self._group: GroupCommit[_Op] = GroupCommit(self._start_batch, max_batches=1)
        self._renewal: asyncio.Task[None] | None = None
        self._closed = False
        self._warn = RateLimitedLog(logger, logging.WARNING)

    def __repr__(self) -> str:
        return f"RedisJournal({redacted_url(self._url)!r}, {self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    # -- Redis -------------------------------------------------------------------------------

    def _redis(self) -> Redis:
        if self._closed:
            raise ClientClosedError(f"{self!r} is closed; open a new one")
        if self._client is None:
            self._client = connect(self._url, timeout=self._timeout)
            self._apply = self._client.register_script(APPLY)
        return self._client

    async def _call(self, call: Awaitable[T]) -> T:
        errors = require_redis().RedisError
        try:
            return await call
        except (errors, OSError) as exc:
            raise JournalUnavailableError(
                f"the Redis journal {self._name!r} at {redacted_url(self._url)} did not "
                f"answer ({type(exc).__name__}: {exc}); nothing was launched on its behalf"
            ) from exc

    # -- batches: every operation goes through one script call per round trip --------------

    async def _submit(self, op: _Op, undo: Callable[[Any], _Op | None] | None = None) -> Any:
        self._redis()  # refuses a closed journal
        return await self._group.submit(op, undo=undo)

    def _start_batch(self, ops: Sequence[_Op]) -> asyncio.Future[list[Outcome]]:
        return asyncio.ensure_future(self._run_batch(ops))

    async def _run_batch(self, ops: Sequence[_Op]) -> list[Outcome]:
        args = (
            self._lease_prefix,
            self._owner,
            self._seen_prefix,
            max(60_000, self._lease_ms() * 6),
            dump_json([op.args for op in ops]),
        )
        replies = await self._call(self._apply(keys=[self._entries], args=args))
        return [op.read(reply) for op, reply in zip(ops, replies, strict=True)]

    def _lease_ms(self) -> int:
        return max(1, round(self._lease * 1000))

    async def _hold_lease(self) -> None:
        """Take this journal's lease before its first claim, and keep it renewed."""
        if self._renewal is not None:
            return
        client = self._redis()
        lease_key = self._lease_prefix + self._owner
        await self._call(client.set(lease_key, b"1", px=self._lease_ms()))
        if self._renewal is None:
            self._renewal = asyncio.get_running_loop().create_task(self._renew(lease_key))

    async def _renew(self, lease_key: str) -> None:
        client = self._redis()
        while True:
            await anyio.sleep(self._lease / 3)
            try:
                await client.set(lease_key, b"1", px=self._lease_ms())
            except (require_redis().RedisError, OSError) as exc:
                # Not fatal: peers may see our claims as in doubt meanwhile, which only
                # ever stops a resend, never causes one.
                self._warn.log(
                    "could not renew the lease of journal %r at %s: %s",
                    self._name,
                    redacted_url(self._url),
                    type(exc).__name__,
                )

    # -- the operations ----------------------------------------------------------------------

    async def _lookup(self, keys: list[str], run: str) -> list[Lookup]:
        lookups: list[Lookup] = []
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            lookups.extend(await self._submit(_lookup_op(keys[start : start + _LOOKUP_CHUNK], run)))
        return lookups

    async def _get_many(self, keys: list[str]) -> list[JournalEntry | None]:
        entries: list[JournalEntry | None] = []
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            found = await self._submit(_lookup_op(keys[start : start + _LOOKUP_CHUNK], None))
            entries.extend(lookup.entry for lookup in found)
        return entries

    async def _claim(self, key: str) -> Claim:
        await self._hold_lease()

        def undo(claimed: Claim) -> _Op | None:
            # Cancelled before sending: the claim is ours and nothing went out.
            return _change_op(key, Change(kind="released")) if claimed.won else None

        claim: Claim = await self._submit(_claim_op(key), undo)
        return claim

    async def _change(self, key: str, change: Change) -> None:
        await self._submit(_change_op(key, change))

    async def _end_run(self, run: str) -> None:
        await self._submit(_Op(["E", run], _ok))

    async def entries(self, state: KeyState | None = None) -> AsyncIterator[JournalEntry]:
        """Every entry (or those in `state`), page by page, in no particular order."""
        client = self._redis()
        cursor: int = 0
        while True:
            cursor, page = await self._call(client.hscan(self._entries, cursor, count=_SCAN_COUNT))
            for entry in await self._page_entries(page):
                if state is None or entry.state is state:
                    yield entry
            if cursor == 0:
                return

    async def _page_entries(self, page: dict[bytes, bytes]) -> list[JournalEntry]:
        records = {field.decode(): _record(raw) for field, raw in page.items()}
        owners = sorted(
            {
                r.owner
                for r in records.values()
                if r.state is KeyState.CLAIMED and r.owner and r.owner != self._owner
            }
        )
        live = {self._owner}
        if owners:
            client = self._redis()
            flags = await self._call(client.mget([self._lease_prefix + owner for owner in owners]))
            live.update(
                owner for owner, flag in zip(owners, flags, strict=True) if flag is not None
            )
        entries = []
        for key, record in records.items():
            entry = view(key, record, live.__contains__)
            assert entry is not None
            entries.append(entry)
        return entries

    # -- the end -----------------------------------------------------------------------------

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._group.drain()
        renewal, self._renewal = self._renewal, None
        client, self._client = self._client, None
        if renewal is not None:
            # Cancelled again until it ends: redis-py's writes can drop a cancellation.
            await cancel_and_wait(renewal)
        if client is None:
            return
        try:
            if renewal is not None:
                # Our claims left unanswered are in doubt for everyone from now on.
                with contextlib.suppress(require_redis().RedisError, OSError):
                    await client.delete(self._lease_prefix + self._owner)
        finally:
            await client.aclose()
