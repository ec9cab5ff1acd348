"""What a journal holds per key, as callers see it, and the checks on keys and names."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .._convert import structure_execution, unstructure
from ..models import WorkflowExecution, WorkflowStatus, status_from_text

__all__ = [
    "MAX_KEY_LENGTH",
    "STATE_BY_VALUE",
    "JournalEntry",
    "KeyState",
    "Lookup",
    "check_key",
    "decode_execution",
    "encode_execution",
]

MAX_KEY_LENGTH = 512

# Control characters would make keys unreadable in logs and ambiguous in a JSON lines file.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Secrets stay out of the journal: an interactive execution's token, and the link that
# may carry it in its query.
_SECRET_FIELDS = ("token", "link")


class KeyState(str, enum.Enum):
    """Where a key stands in a journal."""

    #: Claimed by a batch that is running now: its launch is being sent.
    CLAIMED = "claimed"
    #: Claimed by a batch that ended or died before it recorded an answer: the launch may
    #: have reached the API. Never resent on its own; see `Journal.resolve`.
    IN_DOUBT = "in_doubt"
    #: Launched: the execution is recorded.
    LAUNCHED = "launched"
    #: Known not to be launched (refused, or resolved so): the next run sends it.
    RELEASED = "released"

    __str__ = str.__str__


#: A stored state word to its KeyState: a dict lookup, cheaper than calling the enum for
#: each of the 100,000 rows a resume reads.
STATE_BY_VALUE: Mapping[str, KeyState] = {state.value: state for state in KeyState}


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One key's record. `execution` is what the launch answered, minus its secrets
    (`token`, `link`); it is `None` when the execution was recorded by `resolve`."""

    key: str
    state: KeyState
    execution_id: str | None = None
    execution: WorkflowExecution | None = None
    #: The final status, once a wait saw it.
    status: WorkflowStatus | str | None = None
    #: Where the result was downloaded to, once it was.
    result: str | None = None


@attrs.frozen
class Lookup:
    """A key's entry (`None`: never seen) and whether the same run looked it up before."""

    entry: JournalEntry | None
    repeated: bool = False


def check_key(value: object) -> str:
    """A journal key: a non-empty str of printable characters, at most MAX_KEY_LENGTH."""
    if not isinstance(value, str):
        raise TypeError(f"a journal key must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError("a journal key must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise ValueError(
            f"a journal key must be at most {MAX_KEY_LENGTH} characters, got {len(value)}"
        )
    if _CONTROL.search(value):
        raise ValueError(f"a journal key must not hold control characters, got {value[:60]!r}")
    return value


def encode_execution(execution: WorkflowExecution) -> str:
    """The JSON text a journal keeps for `execution`: everything but its secrets."""
    data = unstructure(attrs.evolve(execution, token=None, link=None))
    for name in _SECRET_FIELDS:
        data.pop(name, None)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def decode_execution(text: str) -> WorkflowExecution:
    """The execution `encode_execution` wrote."""
    data: Mapping[str, Any] = json.loads(text)
    return structure_execution(data)


def status_of(text: str | None) -> WorkflowStatus | str | None:
    """A stored status string as the SDK models it."""
    return None if text is None else status_from_text(text)
