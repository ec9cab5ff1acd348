"""launch_many with a journal: keys looked up in order, claimed before sending, recorded after."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import anyio
import attrs

from .._threads import settle
from ..errors import LaunchInDoubtError
from ..journal import Journal, JournalEntry, KeyState
from ..journal._model import check_key
from ..models import LaunchOutcome, LaunchRequest, WorkflowExecution
from .doubt import may_have_launched
from .launch import Indexed, Launch, Settled
from .read import read_in_chunks

__all__ = ["JournaledLaunch"]

logger = logging.getLogger("transactionlink_async.journal")

T = TypeVar("T")

Fetch = Callable[[str], Awaitable[WorkflowExecution]]
Item = Settled | Indexed

#: Keys looked up together: one journal round trip for this many input items.
CHUNK = 256
#: How often keys held by another running batch are looked at again (seconds).
FIRST_RECHECK = 0.05
LAST_RECHECK = 1.0
#: Tries at recording an execution that the API created, before leaving it in doubt.
RECORD_TRIES = 3


async def _finish(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` to its end even when cancelled (the cancel is raised after it)."""
    task = asyncio.ensure_future(awaitable)
    await settle((task,))
    return task.result()


@attrs.frozen
class _End:
    """The input is over (with the error that ended it, if any)."""

    error: Exception | None


def _repeated(item: Indexed) -> LaunchOutcome:
    return LaunchOutcome(
        index=item.index,
        request=item.request,
        error=ValueError(
            f"key {item.request.key!r} is given more than once in this batch; "
            "every request of a journaled batch needs its own key"
        ),
    )


def _resumed(item: Indexed, execution: WorkflowExecution) -> LaunchOutcome:
    return LaunchOutcome(index=item.index, request=item.request, execution=execution, resumed=True)


def _missing_key(request: LaunchRequest) -> Exception | None:
    if request.key is None:
        return ValueError(
            "with a journal, every LaunchRequest needs a key (LaunchRequest(..., key=...)): "
            "a name for the request, unique in the journal and the same on every run"
        )
    try:
        check_key(request.key)
    except (TypeError, ValueError) as exc:
        return exc
    return None


class JournaledLaunch:
    """A keyed batch's side of the journal: the input it feeds the batch, and each attempt.

    The input is read in chunks and looked up in the journal in order: a key recorded as
    launched becomes a resumed outcome, one in doubt a `LaunchInDoubtError`, one given
    twice in the batch a `ValueError`, and only the others go to launch slots. Each
    attempt claims its key before sending and records the answer before freeing its
    slot, so at most `concurrency` keys can be left in doubt by a kill. A key that
    another running batch holds is set aside (or, claimed since the lookup, waited for
    in its slot) until that batch has recorded its fate.
    """

    def __init__(
        self,
        requests: Iterable[LaunchRequest] | AsyncIterable[LaunchRequest],
        *,
        journal: Journal,
        launch: Launch,
        fetch: Fetch,
    ) -> None:
        if not isinstance(journal, Journal):
            raise TypeError(
                "journal must be a Journal (SqliteJournal, RedisJournal), "
                f"got {type(journal).__name__}"
            )
        if not isinstance(requests, (Iterable, AsyncIterable)) or isinstance(
            requests, (str, bytes)
        ):
            raise TypeError(
                "requests must be an iterable or async iterable of LaunchRequest, "
                f"got {type(requests).__name__}"
            )
        self._requests = requests
        self._journal = journal
        self._launch = launch
        self._fetch = fetch
        self._run = secrets.token_hex(8)
        #: Keys another running batch held at lookup, with their input position.
        self._deferred: dict[str, Indexed] = {}

    # -- the input the batch reads -----------------------------------------------------------

    async def items(self) -> AsyncIterator[Item]:
        """Every input request as a Settled outcome or an Indexed launch (set-aside keys
        come later). A task looks the next chunk up while this one is handed out."""
        # Whole chunks go through the queue: two chunks ahead at most.
        queue: asyncio.Queue[list[Item] | _End] = asyncio.Queue(maxsize=2)
        producer = asyncio.ensure_future(self._produce(queue))
        try:
            while True:
                items = await queue.get()
                if isinstance(items, _End):
                    if items.error is not None:
                        raise items.error
                    return
                for item in items:
                    yield item
        finally:
            producer.cancel()
            await settle((producer,))
            await self._end_run()

    async def _produce(self, queue: asyncio.Queue[list[Item] | _End]) -> None:
        error: Exception | None = None
        index = 0
        try:
            async for chunk in read_in_chunks(self._requests, CHUNK):
                await queue.put(await self._sort(chunk, index))
                index += len(chunk)
                if self._deferred:
                    await queue.put(await self._recheck())
        except Exception as exc:  # the input broke: finish what was read, then raise
            error = exc
        try:
            while self._deferred:
                await queue.put(await self._recheck(wait=True))
        except Exception as exc:
            error = error or exc
        await queue.put(_End(error))

    async def _end_run(self) -> None:
        try:
            await self._journal.end_run(self._run)
        except Exception:  # a journal gone away forgets runs on its own
            logger.debug("could not end journal run", exc_info=True)

    async def _sort(self, chunk: list[object], first: int) -> list[Item]:
        """The chunk's items, each settled, to launch, or (held elsewhere) set aside."""
        items: list[Item] = []
        keyed: list[Indexed] = []
        for index, item in enumerate(chunk, start=first):
            if not isinstance(item, LaunchRequest):
                # The batch refuses it with its usual TypeError outcome.
                items.append(Indexed(index, item))  # type: ignore[arg-type]
                continue
            problem = _missing_key(item)
            if problem is not None:
                items.append(Settled(LaunchOutcome(index=index, request=item, error=problem)))
            else:
                keyed.append(Indexed(index, item))
        if not keyed:
            return items
        lookups = await self._journal.lookup(
            [item.request.key for item in keyed],  # type: ignore[misc]
            run=self._run,
        )
        for item, found in zip(keyed, lookups, strict=True):
            entry = found.entry
            if found.repeated:
                items.append(Settled(_repeated(item)))
            elif entry is not None and entry.state is KeyState.LAUNCHED and entry.execution:
                # The common case of a rerun, without a coroutine per key.
                items.append(Settled(_resumed(item, entry.execution)))
            else:
                decided = await self._decide(item, entry)
                if decided is not None:
                    items.append(decided)
        return items

    async def _decide(self, item: Indexed, entry: JournalEntry | None) -> Item | None:
        """What to do with a key, given its entry: launch, settle, or set aside (None)."""
        if entry is None or entry.state is KeyState.RELEASED:
            return item
        if entry.state is KeyState.CLAIMED:
            self._deferred[entry.key] = item
            return None
        return Settled(await self._settled(item.index, item.request, entry))

    async def _settled(
        self, index: int, request: LaunchRequest, entry: JournalEntry
    ) -> LaunchOutcome:
        if entry.state is KeyState.IN_DOUBT:
            return LaunchOutcome(index=index, request=request, error=LaunchInDoubtError(entry.key))
        assert entry.state is KeyState.LAUNCHED
        assert entry.execution_id is not None
        execution = entry.execution
        if execution is None:
            # Recorded by `resolve` from an id alone: fetch it once, and keep it.
            try:
                execution = await self._fetch(entry.execution_id)
            except Exception as exc:
                return LaunchOutcome(index=index, request=request, error=exc, resumed=True)
            try:
                await self._journal.record_launched(entry.key, execution)
            except Exception:
                logger.debug("could not keep the fetched execution", exc_info=True)
        return _resumed(Indexed(index, request), execution)

    async def _recheck(self, *, wait: bool = False) -> list[Item]:
        """Look again at the keys set aside; with `wait`, until one of them moves."""
        delay = FIRST_RECHECK
        items: list[Item] = []
        while self._deferred:
            keys = list(self._deferred)
            entries = await self._journal.get_many(keys)
            for key, entry in zip(keys, entries, strict=True):
                if entry is None or entry.state is not KeyState.CLAIMED:
                    decided = await self._decide(self._deferred.pop(key), entry)
                    if decided is not None:
                        items.append(decided)
            if items or not wait:
                break
            await anyio.sleep(delay)
            delay = min(delay * 2, LAST_RECHECK)
        return items

    # -- one attempt, in a launch slot -------------------------------------------------------

    async def attempt(
        self,
        index: int,
        request: LaunchRequest,
        body: Mapping[str, Any],
    ) -> LaunchOutcome:
        """Claim, send, record; a key another batch claimed first waits for its fate."""
        key = request.key
        assert key is not None
        delay = FIRST_RECHECK
        while True:
            try:
                claim = await self._journal.claim(key)
            except Exception as exc:
                # Nothing was sent; a claim that went through all the same is given back.
                await _finish(self._forget_claim(key, in_doubt=False))
                return LaunchOutcome(index=index, request=request, error=exc)
            if claim.won:
                return await self._send(index, request, body)
            entry = claim.entry
            assert entry is not None
            if entry.state is not KeyState.CLAIMED:
                return await self._settled(index, request, entry)
            # Another batch claimed it since the lookup: its answer is moments away
            # (or, if it dies, its lease ends and the key is in doubt).
            await anyio.sleep(delay)
            delay = min(delay * 2, LAST_RECHECK)

    async def _send(
        self,
        index: int,
        request: LaunchRequest,
        body: Mapping[str, Any],
    ) -> LaunchOutcome:
        key = request.key
        assert key is not None
        try:
            execution = await self._launch(body)
        except asyncio.CancelledError:
            await _finish(self._forget_claim(key, in_doubt=True))
            raise
        except Exception as exc:
            doubt = may_have_launched(exc)
            await _finish(self._forget_claim(key, in_doubt=doubt))
            if doubt:
                error: Exception = LaunchInDoubtError(
                    key,
                    f"the launch of key {key!r} may have reached the API ({exc}); it is "
                    "recorded in doubt and will not be resent on its own: check whether it "
                    "exists, then call journal.resolve(key, execution_id or None)",
                )
                error.__cause__ = exc
            else:
                error = exc
            return LaunchOutcome(index=index, request=request, error=error)
        # The slot stays taken until the answer is on record: at most `concurrency` keys
        # are ever claimed without one.
        # (A journal applies a change even when its caller is cancelled.)
        await self._record(key, execution)
        return LaunchOutcome(index=index, request=request, execution=execution)

    async def _forget_claim(self, key: str, *, in_doubt: bool) -> None:
        try:
            if in_doubt:
                await self._journal.record_in_doubt(key)
            else:
                await self._journal.record_released(key)
        except Exception:
            # Left claimed: a claim whose batch has ended counts as in doubt anyway.
            logger.warning("could not record the fate of key %r in the journal", key)

    async def _record(self, key: str, execution: WorkflowExecution) -> None:
        for attempt in range(RECORD_TRIES):
            try:
                await self._journal.record_launched(key, execution)
            except Exception:
                if attempt + 1 == RECORD_TRIES:
                    logger.warning(
                        "key %r was launched as execution %s, but the journal could not "
                        "record it: the next run will report it in doubt; record it with "
                        "journal.resolve(%r, %r)",
                        key,
                        execution.id,
                        key,
                        execution.id,
                        exc_info=True,
                    )
                    return
                await anyio.sleep(0.1 * 4**attempt)
            else:
                return
