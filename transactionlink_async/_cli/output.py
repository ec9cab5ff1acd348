"""What the command line prints: aligned tables for people, one JSON object for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import attrs

from ..errors import APIError, TransportError
from ..models import WorkflowExecution

__all__ = [
    "FAILURE_STATUSES",
    "Output",
    "error_json",
    "execution_json",
    "execution_text",
    "is_failure",
    "public_link",
    "table",
]

# A workflow that ended in one of these did not do its job: the command exits 1.
FAILURE_STATUSES = frozenset({"FAILED", "TIMEOUT", "TERMINATED", "EXPIRED", "CANCELLED"})

# Never printed: the interactive token opens the person's workflow page.
_SECRET_FIELDS = frozenset({"token"})


def is_failure(status: object) -> bool:
    """Whether a final status means the workflow did not complete."""
    return str(status) in FAILURE_STATUSES


def public_link(url: str | None) -> str | None:
    """A link without its query and fragment, where an access token may ride."""
    if url is None:
        return None
    parts = urlsplit(url)
    hidden = "?..." if parts.query or parts.fragment else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + hidden


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, str):
        return str(value)  # a WorkflowStatus becomes its plain word
    return value


def execution_json(execution: WorkflowExecution) -> dict[str, Any]:
    """The execution as snake_case JSON: set fields only, no token, the link without query."""
    data: dict[str, Any] = {"final": execution.is_final}
    for field in attrs.fields(WorkflowExecution):
        value = getattr(execution, field.name)
        if value is None or field.name in _SECRET_FIELDS:
            continue
        data[field.name] = public_link(value) if field.name == "link" else _json_value(value)
    return data


def error_json(exc: BaseException) -> dict[str, Any]:
    """An error as JSON for scripts: its kind, message and, for API errors, the fingerprint."""
    data: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, APIError):
        data.update(status=exc.status, fingerprint=exc.fingerprint)
    if isinstance(exc, TransportError):
        data["request_sent"] = exc.request_sent
    return data


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table; numbers are right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


class Output:
    """Where a command's answer goes: people get text, `--json` gets one object on stdout."""

    def __init__(
        self, *, as_json: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.as_json = as_json
        # Looked up now, not at import, so redirected streams (tests, pipes) are honoured.
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def say(self, text: str) -> None:
        """A line for people (on stderr under --json, so stdout stays one JSON object)."""
        stream = self.stderr if self.as_json else self.stdout
        stream.write(text + "\n")
        stream.flush()

    def result(self, data: Mapping[str, Any], text: str) -> None:
        """The command's answer: `data` as JSON under --json, else `text`."""
        if self.as_json:
            self.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
        else:
            self.stdout.write(text + "\n")
        self.stdout.flush()

    def error(self, exc: BaseException, *, hint: str | None = None) -> None:
        """One line on stderr, with the fingerprint of an API error; JSON too under --json."""
        message = " ".join((str(exc) or type(exc).__name__).split())
        if isinstance(exc, APIError) and not exc.fingerprint:
            message += " (no fingerprint in the answer)"
        if hint:
            message += f"; {hint}"
        self.stderr.write(f"error: {message}\n")
        self.stderr.flush()
        if self.as_json:
            self.result({"error": error_json(exc)}, "")


def execution_text(execution: WorkflowExecution) -> str:
    """The execution as aligned `field  value` lines for people."""
    data = execution_json(execution)
    shown = {k: v for k, v in data.items() if k != "final" and v not in ({}, [])}
    width = max(len(k) for k in shown)
    lines = []
    for key, value in shown.items():
        text = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)
