"""What a journal holds per key, as callers see it, and the checks on keys and names."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ..models import WorkflowExecution, WorkflowStatus, status_from_text

__all__ = [
    "MAX_KEY_LENGTH",
    "STATE_BY_VALUE",
    "JournalEntry",
    "KeyState",
    "Lookup",
    "check_key",
    "decode_execution",
    "dump_json",
    "encode_execution",
    "load_json",
]

MAX_KEY_LENGTH = 512

# Control characters would make keys unreadable in logs and ambiguous in a JSON lines file.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")

# Left out of the journal: the secrets (an interactive execution's token, and the link
# that may carry it in its query), and the free-form JSON (the parameters are the
# request's own; a journal row stays small and holds no copy of customer data).
_LEFT_OUT = frozenset({"token", "link", "parameters", "ui_options", "origin"})
_KEPT_FIELDS = tuple(
    field.name for field in attrs.fields(WorkflowExecution) if field.name not in _LEFT_OUT
)
_FIELD_SET = frozenset(_KEPT_FIELDS)
# raw_decode: json.loads without its encoding sniffing and whitespace matching.
_SCAN = json.JSONDecoder().raw_decode
#: Compact JSON text, by one encoder made once (json.dumps with options makes one a call).
dump_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


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
    (`token`, `link`) and free-form JSON (`parameters`, `ui_options`, `origin`); it is
    `None` when the execution was recorded by `resolve` from an id alone."""

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
    # isprintable() is the fast test for the usual key; the patterns decide the rest.
    if not value.isprintable():
        if _CONTROL.search(value):
            raise ValueError(f"a journal key must not hold control characters, got {value[:60]!r}")
        if _SURROGATE.search(value):
            # Not text a journal can store (as UTF-8): refused before it fails a round
            # trip shared with other keys.
            raise ValueError(
                "a journal key must be Unicode text without lone surrogates "
                f"(e.g. from bytes decoded with errors='surrogateescape'), got {value[:60]!r}"
            )
    return value


def encode_execution(execution: WorkflowExecution) -> str:
    """The JSON text a journal keeps for `execution`: its plain fields, no secret.

    Written by hand, not by the API converter: it runs once per launch, on the hot path.
    """
    data: dict[str, Any] = {}
    for name in _KEPT_FIELDS:
        value = getattr(execution, name)
        if value is None:
            continue
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    return dump_json(data)


def load_json(text: str) -> Any:
    """`text` as JSON, as `json.loads` reads it, minus that function's per-call overhead
    (a resume reads one or two small documents for each of 100,000 keys)."""
    if text[:1].isspace():
        text = text.lstrip()
    value, end = _SCAN(text)
    if end != len(text) and text[end:].strip():
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def decode_execution(text: str) -> WorkflowExecution:
    """The execution `encode_execution` wrote (fields this version does not know are
    left out)."""
    data: dict[str, Any] = load_json(text)
    # A set comparison in C for the usual record, which holds only known fields.
    kept = (
        data
        if data.keys() <= _FIELD_SET
        else {name: value for name, value in data.items() if name in _FIELD_SET}
    )
    kept["status"] = status_from_text(kept["status"])
    expires_at = kept.get("expires_at")
    if expires_at is not None:
        kept["expires_at"] = datetime.fromisoformat(expires_at)
    return WorkflowExecution(**kept)


def status_of(text: str | None) -> WorkflowStatus | str | None:
    """A stored status string as the SDK models it."""
    return None if text is None else status_from_text(text)
