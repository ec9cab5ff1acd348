"""The JSON lines file of `transactionlink batch`: one launch a line, checked before any is sent."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..journal._model import check_key
from ..models import LaunchRequest

__all__ = ["FIELDS", "BatchFileError", "check_file", "parse_line", "read_requests"]

#: The fields of a line; `parameters` may be left out (no parameters).
FIELDS = ("key", "workflowDefinitionId", "locale", "parameters")
_REQUIRED = ("key", "workflowDefinitionId", "locale")


class BatchFileError(ValueError):
    """A line of the batch file cannot be launched; nothing of the batch was sent."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}, line {line}: {problem}")
        self.line = line


class _Bad(ValueError):
    """What is wrong with one line."""


def _text(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name!r} must be a non-empty string, got {json.dumps(value)[:60]}")
    return value


def parse_line(text: str) -> LaunchRequest:
    """The launch one line asks for (ValueError saying what is wrong with it)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _Bad(f"expected a JSON object with {', '.join(FIELDS)}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (a line has {', '.join(FIELDS)})")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise ValueError(f"missing {missing[0]!r}")
    key = data["key"]
    try:
        check_key(key)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad 'key': {exc}") from None
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _Bad("'parameters' must be a JSON object")
    return LaunchRequest(
        workflow_definition_id=_text(data, "workflowDefinitionId"),
        locale=_text(data, "locale"),
        parameters=parameters,
        key=key,
    )


class _NotText(ValueError):
    def __init__(self, line: int) -> None:
        super().__init__("not UTF-8 text")
        self.line = line


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line (read as bytes: a bad byte has a line)."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _NotText(number) from None
            if line.strip():
                yield number, line


def check_file(path: Path) -> int:
    """Check every line (and that no key comes twice); the number of launches it holds.

    Blocking: run it in a worker thread. The keys seen so far live in a temporary SQLite
    table, not in memory, so a file of millions of lines is checked in bounded memory.
    """
    count = 0
    with contextlib.closing(sqlite3.connect("")) as seen:  # "": a private temporary file
        seen.execute("CREATE TABLE keys (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        try:
            for number, text in _lines(path):
                try:
                    request = parse_line(text)
                except ValueError as exc:
                    raise BatchFileError(path, number, str(exc)) from None
                try:
                    seen.execute("INSERT INTO keys VALUES (?, ?)", (request.key, number))
                except sqlite3.IntegrityError:
                    first = seen.execute(
                        "SELECT line FROM keys WHERE key = ?", (request.key,)
                    ).fetchone()[0]
                    raise BatchFileError(
                        path, number, f"key {request.key!r} is already on line {first}"
                    ) from None
                count += 1
        except _NotText as exc:
            raise BatchFileError(path, exc.line, str(exc)) from None
    return count


def read_requests(path: Path) -> Iterator[LaunchRequest]:
    """The launches of a file that `check_file` accepted, read line by line."""
    for _, text in _lines(path):
        yield parse_line(text)
