"""The Journal interface: what `launch_many` and the batch pipeline ask of a launch journal."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TypeVar

import attrs

from ..models import WorkflowExecution, WorkflowStatus
from ._model import JournalEntry, KeyState, Lookup, check_key, encode_execution
from ._states import Change

__all__ = ["Claim", "Journal"]

J = TypeVar("J", bound="Journal")


@attrs.frozen(kw_only=True)
class Claim:
    """A claim attempt: `won` when this journal now holds the key; otherwise `entry` says
    who does (CLAIMED by a running batch, IN_DOUBT, or LAUNCHED)."""

    won: bool
    entry: JournalEntry | None


def _check_execution_id(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"execution_id must be a str or None, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("execution_id must not be empty (pass None if it was not launched)")
    return value


class Journal(abc.ABC):
    """Records, per key, what a batch launched, so that a rerun launches nothing twice.

    A key is claimed before its request is sent and its execution recorded after the
    answer; every change is durable before the call returns. `launch_many(...,
    journal=...)` drives it; users mostly call `resolve`, `get` and `entries`.
    Use it with `async with`, or `await journal.aclose()` when done.
    """

    # -- what users call ---------------------------------------------------------------------

    async def resolve(self, key: str, execution_id: str | None) -> None:
        """Record what you found out about a key: it was launched as `execution_id`, or it
        was not (`None`), so that the next run sends it.

        Meant for IN_DOUBT keys; refused (`ValueError`) while a running batch holds the key.
        """
        check_key(key)
        if execution_id is not None:
            _check_execution_id(execution_id)
        await self._change(key, Change(kind="resolve", execution_id=execution_id))

    async def get(self, key: str) -> JournalEntry | None:
        """The key's entry, or `None` when the journal never saw it."""
        (entry,) = await self.get_many([key])
        return entry

    async def get_many(self, keys: Sequence[str]) -> list[JournalEntry | None]:
        """The entries of `keys`, in their order (`None` for keys never seen)."""
        for key in keys:
            check_key(key)
        return await self._get_many(list(keys))

    @abc.abstractmethod
    def entries(self, state: KeyState | None = None) -> AsyncIterator[JournalEntry]:
        """Every entry (or those in `state`), in key order, read page by page."""

    async def aclose(self) -> None:
        """Wait for the changes under way, then release the journal's connections."""
        await self._close()

    async def __aenter__(self: J) -> J:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- what a batch calls ------------------------------------------------------------------

    async def lookup(self, keys: Sequence[str], *, run: str) -> list[Lookup]:
        """The entries of `keys`, each marked `repeated` when the same `run` looked it up
        before (a key given twice in one batch). Ends with `end_run(run)`."""
        return await self._lookup(list(keys), run)

    async def claim(self, key: str) -> Claim:
        """Claim `key` before sending its request: won only if nobody launched it."""
        return await self._claim(key)

    async def record_launched(self, key: str, execution: WorkflowExecution) -> None:
        """The launch of `key` was answered with `execution`."""
        await self._change(
            key,
            Change(
                kind="launched",
                execution_id=execution.id,
                execution=encode_execution(execution),
            ),
        )

    async def record_released(self, key: str) -> None:
        """The request of our claim on `key` provably launched nothing."""
        await self._change(key, Change(kind="released"))

    async def record_in_doubt(self, key: str) -> None:
        """The request of our claim on `key` may have reached the API, with no execution."""
        await self._change(key, Change(kind="in_doubt"))

    async def record_status(self, key: str, status: WorkflowStatus | str) -> None:
        """A wait saw the final `status` of the execution launched for `key`."""
        await self._change(key, Change(kind="finished", status=str(status)))

    async def record_result(self, key: str, path: str) -> None:
        """The result of the execution launched for `key` was downloaded to `path`."""
        await self._change(key, Change(kind="downloaded", result=path))

    async def end_run(self, run: str) -> None:
        """Forget which keys `run` looked up."""
        await self._end_run(run)

    # -- what a backend provides -------------------------------------------------------------

    @abc.abstractmethod
    async def _lookup(self, keys: list[str], run: str) -> list[Lookup]: ...

    @abc.abstractmethod
    async def _get_many(self, keys: list[str]) -> list[JournalEntry | None]: ...

    @abc.abstractmethod
    async def _claim(self, key: str) -> Claim: ...

    @abc.abstractmethod
    async def _change(self, key: str, change: Change) -> None:
        """Apply `change` atomically and durably (raise ValueError when refused)."""

    @abc.abstractmethod
    async def _end_run(self, run: str) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...
