"""The per-key state machine every journal follows, as pure functions over stored records.

claimed (maybe sent) -> launched(execution) | released (provably not launched)
                     | in doubt (may have been sent, no answer recorded; also a claim
                       whose owner is gone)
launched -> launched + final status -> launched + result file
in doubt / anything not claimed by a live batch -> resolve -> launched | released

A transition that does not apply returns `None`: the record stays as it is. The SQLite
journal runs these functions inside its transactions; the Redis journal's Lua scripts
mirror them (the tests hold both to this model).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._model import JournalEntry, KeyState, decode_execution, status_of

__all__ = [
    "Change",
    "Record",
    "apply",
    "claim",
    "downloaded",
    "entry_of",
    "finished",
    "in_doubt",
    "is_live_claim",
    "launched",
    "released",
    "resolve",
    "view",
]

Alive = Callable[[str], bool]


@attrs.frozen(kw_only=True)
class Record:
    """What a journal stores for one key. `owner` is set while CLAIMED."""

    state: KeyState
    owner: str | None = None
    execution_id: str | None = None
    #: The execution's JSON text without its secrets (see `encode_execution`).
    execution: str | None = None
    status: str | None = None
    result: str | None = None


def is_live_claim(record: Record | None, alive: Alive) -> bool:
    """Whether a batch that is still running holds the key's claim."""
    return (
        record is not None
        and record.state is KeyState.CLAIMED
        and record.owner is not None
        and alive(record.owner)
    )


def view(key: str, record: Record | None, alive: Alive) -> JournalEntry | None:
    """The entry callers see: a claim whose owner is gone shows as IN_DOUBT."""
    if record is None:
        return None
    state = record.state
    if state is KeyState.CLAIMED and not is_live_claim(record, alive):
        state = KeyState.IN_DOUBT
    return entry_of(key, state, record.execution_id, record.execution, record.status, record.result)


def entry_of(
    key: str,
    state: KeyState,
    execution_id: str | None,
    execution: str | None,
    status: str | None,
    result: str | None,
) -> JournalEntry:
    """The entry of a key in `state` with these stored fields (a LAUNCHED record's view,
    which needs no owner to be looked at)."""
    return JournalEntry(
        key=key,
        state=state,
        execution_id=execution_id,
        execution=None if execution is None else decode_execution(execution),
        status=status_of(status),
        result=result,
    )


def claim(record: Record | None, me: str) -> Record | None:
    """Claim a key nobody launched: only an unknown or released key can be claimed."""
    if record is None or record.state is KeyState.RELEASED:
        return Record(state=KeyState.CLAIMED, owner=me)
    return None


def _claimed_by(record: Record | None, me: str) -> bool:
    return record is not None and record.state is KeyState.CLAIMED and record.owner == me


def launched(record: Record | None, execution_id: str, execution: str | None) -> Record | None:
    """The API answered with an execution: that is the truth, whoever held the claim."""
    if (
        record is not None
        and record.state is KeyState.LAUNCHED
        and record.execution_id == execution_id
    ):
        # Recorded again (a resolve, a retried write): keep what later steps added.
        if execution is None or execution == record.execution:
            return None
        return attrs.evolve(record, execution=execution)
    return Record(state=KeyState.LAUNCHED, execution_id=execution_id, execution=execution)


def released(record: Record | None, me: str) -> Record | None:
    """Our claim's request provably did not launch anything: the key is free again."""
    return Record(state=KeyState.RELEASED) if _claimed_by(record, me) else None


def in_doubt(record: Record | None, me: str) -> Record | None:
    """Our claim's request may have reached the API, and we have no execution for it."""
    return Record(state=KeyState.IN_DOUBT) if _claimed_by(record, me) else None


def finished(record: Record | None, status: str) -> Record | None:
    """A wait saw the launched execution's final status."""
    if record is None or record.state is not KeyState.LAUNCHED or record.status == status:
        return None
    return attrs.evolve(record, status=status)


def downloaded(record: Record | None, result: str) -> Record | None:
    """The launched execution's result was downloaded to `result`."""
    if record is None or record.state is not KeyState.LAUNCHED or record.result == result:
        return None
    return attrs.evolve(record, result=result)


def resolve(
    record: Record | None, execution_id: str | None, alive: Alive, *, key: str
) -> Record | None:
    """The user's finding about a key: launched as `execution_id`, or not launched (None).

    Refused while a running batch holds the key: its answer is still to come.
    """
    if is_live_claim(record, alive):
        raise ValueError(
            f"key {key!r} is being launched right now by a running batch; "
            "resolve it once that batch has ended"
        )
    if execution_id is None:
        if record is not None and record.state is KeyState.RELEASED:
            return None
        return Record(state=KeyState.RELEASED)
    return launched(record, execution_id, None)


@attrs.frozen(kw_only=True)
class Change:
    """One transition of a key's record, applied atomically by a journal backend."""

    kind: str  # launched | released | in_doubt | finished | downloaded | resolve
    execution_id: str | None = None
    execution: str | None = None
    status: str | None = None
    result: str | None = None


def apply(
    record: Record | None, change: Change, *, me: str, alive: Alive, key: str
) -> Record | None:
    """The transition `change` names, or `None` when the record stays as it is."""
    kind = change.kind
    if kind == "launched":
        assert change.execution_id is not None
        return launched(record, change.execution_id, change.execution)
    if kind == "released":
        return released(record, me)
    if kind == "in_doubt":
        return in_doubt(record, me)
    if kind == "finished":
        assert change.status is not None
        return finished(record, change.status)
    if kind == "downloaded":
        assert change.result is not None
        return downloaded(record, change.result)
    if kind == "resolve":
        return resolve(record, change.execution_id, alive, key=key)
    raise ValueError(f"unknown journal change {kind!r}")
