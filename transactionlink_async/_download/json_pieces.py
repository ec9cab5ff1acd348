"""JSON bytes decoded and parsed a piece at a time, so that no step holds the GIL for long.

`json.loads` of bytes first decodes them into one str. For a document of tens of MB that
is one stretch of fresh memory filled with the GIL held (about 45 ms for 58 MB here,
mostly page faults), and the event loop freezes for it even when the parse runs in a
worker thread. Here the bytes are decoded a piece at a time into a window of text, and
json's own C scanner parses every value that lies whole within the window. A container
that runs past the window is entered instead: its brackets, commas and keys are read
here, its members by the scanner again. A scalar longer than a window widens it.

The values are those of `json.loads(data)`, duplicate keys, NaN and all, and invalid
documents raise `ValueError`: `UnicodeDecodeError` for bytes that are not text, unless
a JSON error comes first. Containers entered are not on the C stack: a document nested
deeper than json's recursion limit may parse where json.loads raises RecursionError.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any, cast

__all__ = ["PIECE", "loads_in_pieces", "unchanged"]

PIECE = 1024 * 1024
"""Bytes decoded at a time: about a millisecond with the GIL held."""

# A value that ends this close to the window's end is read again with more text: the
# digits of a number, or the rest of an escape, may be in the next piece.
_MARGIN = 32

_SPACE_CHARS = " \t\n\r"
_SPACE = re.compile(f"[{_SPACE_CHARS}]*")
_OPENERS = "[{"
_CLOSER = {"[": "]", "{": "}"}


class _Window:
    """The text of the document from `base` on, decoded as far as it has been needed."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data = memoryview(data)
        # As json.loads: the encoding told by the first bytes, lone surrogates kept.
        decoder = codecs.getincrementaldecoder(json.detect_encoding(data))
        self._decoder = decoder("surrogatepass")
        self._piece = piece
        self._read = 0
        self.text = ""
        self.base = 0
        self.pos = 0
        self.ended = False
        # Containers entered because they ran past this window: see `_scan`.
        self.entries = 0

    def widen(self) -> None:
        """Drop the text before `pos` and decode at least as much again as is left."""
        kept = self.text[self.pos :]
        wanted = len(kept) + max(self._piece, len(kept))
        parts = [kept]
        held = len(kept)
        # Doubling what is held keeps a long scalar's rereading linear in its length.
        while held < wanted and not self.ended:
            chunk = self._data[self._read : self._read + self._piece]
            self._read += len(chunk)
            self.ended = self._read >= len(self._data)
            part = self._decoder.decode(chunk, self.ended)
            parts.append(part)
            held += len(part)
        self.base += self.pos
        self.pos = 0
        self.entries = 0
        self.text = "".join(parts)

    def next_char(self) -> str:
        """The next character that is not whitespace (now at `pos`), or "" at the end."""
        while True:
            space = _SPACE.match(self.text, self.pos)
            self.pos = space.end() if space else self.pos
            if self.pos < len(self.text):
                return self.text[self.pos]
            if self.ended:
                return ""
            self.widen()

    def error(self, message: str, at: int | None = None) -> ValueError:
        where = self.base + (self.pos if at is None else at)
        return ValueError(f"{message}: character {where}")


class _Entered:
    """A container that runs past the window, being read member by member."""

    __slots__ = ("batched_to", "items", "key", "last", "opener", "pairs")

    def __init__(self, opener: str) -> None:
        self.opener = opener
        self.items: list[Any] = []
        self.pairs: list[tuple[str, Any]] = []
        self.key = ""
        # For an array: the last character of a member read (what closes its members),
        # and how far into the document a batch of them was last tried.
        self.last = ""
        self.batched_to = -1


_Hook = Callable[[list[tuple[str, Any]]], dict[str, Any]]
_Scanner = Callable[[str, int], tuple[Any, int]]


def _scanner(decoder: json.JSONDecoder) -> _Scanner:
    """json's C scanner for `decoder`'s settings (typeshed types its argument oddly)."""
    return cast(_Scanner, make_scanner(cast(Any, decoder)))


def _interning_hook() -> _Hook:
    """Objects built with one str per distinct key, as json.loads shares them.

    The scanner shares keys within one call only; the document is many calls. Being a
    Python call per object, the hook also lets the interpreter hand the GIL over.
    """
    keys: dict[str, str] = {}
    known = keys.setdefault

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {known(key, key): value for key, value in pairs}

    return hook


def unchanged(value: dict[str, Any]) -> dict[str, Any]:
    """An `object_hook` that keeps each object: a Python call at which the GIL may pass."""
    return value


_ENTER = object()
_RETRIES = 2

# Looked back over this many commas at most for one that may end a member of an array.
_COMMAS = 64


def _batch(window: _Window, scan: _Scanner, array: _Entered) -> bool:
    """Members of an array that lie whole in the window, read in one call of the scanner.

    Member by member, a Python step per member makes the parse three times as long, and
    each member's keys would be a str of their own. The window's members up to one of
    its commas are parsed as an array of their own: `[` + members + `]` is JSON only
    when that comma lies between two members (in a string or a deeper container, the
    `]` put after it would not close it), so the scanner itself says whether the cut was
    right. A wrong cut costs one scan of the window, tried once per window.
    """
    text, pos = window.text, window.pos
    if not array.last or window.base + len(text) <= array.batched_to:
        return False
    array.batched_to = window.base + len(text)
    # A comma right after what closed a member is likely to end one; for scalars, any.
    closer = array.last if array.last in '"}]' else ""
    comma = text.rfind(",", pos)
    for _ in range(_COMMAS):
        before = comma - 1
        while before >= pos and text[before] in _SPACE_CHARS:
            before -= 1
        if comma < 0 or before < pos:
            return False
        if not closer or text[before] == closer:
            break
        comma = text.rfind(",", pos, comma)
    else:
        return False
    members = "[" + text[pos:comma] + "]"
    try:
        values, end = scan(members, 0)
    except (StopIteration, ValueError):
        return False
    if end != len(members):
        return False
    array.items.extend(values)
    window.pos = comma + 1
    return True


def _scan(window: _Window, scan: _Scanner, piece: int) -> Any:
    """The value at `pos`, or `_ENTER` for a container to be read member by member.

    Finding that a container runs past the window costs a scan of the rest of it. Where
    containers are nested deep, each level would cost one: past `_RETRIES` of them in a
    window, a container is entered without trying, so the work stays linear in the
    length of the document whatever its depth.
    """
    if window.entries >= _RETRIES and window.text[window.pos] in _OPENERS:
        return _ENTER
    while True:
        text, pos = window.text, window.pos
        try:
            value, end = scan(text, pos)
        except StopIteration as stop:
            at, cut = stop.value, False
            message = "Expecting value"
        except json.JSONDecodeError as exc:
            at, cut = exc.pos, exc.msg.startswith("Unterminated string")
            message = exc.msg
        else:
            if window.ended or len(text) - end >= _MARGIN:
                window.pos = end
                return value
            window.widen()
            continue
        if window.ended or not (cut or at >= len(text) - _MARGIN):
            raise window.error(message, at)
        if text[pos] in _OPENERS and len(text) - pos >= piece:
            window.entries += 1
            return _ENTER
        window.widen()


def loads_in_pieces(data: bytes, piece: int = PIECE) -> Any:
    """`json.loads(data)`, decoding `piece` bytes at a time: the same values and errors."""
    window = _Window(data, piece)
    hook = _interning_hook()
    scan = _scanner(json.JSONDecoder(object_pairs_hook=hook))
    # Batches share keys within themselves, as json.loads does; `unchanged` is a Python call
    # per object, at which the interpreter may hand the GIL over.
    scan_batch = _scanner(json.JSONDecoder(object_hook=unchanged))
    entered: list[_Entered] = []
    opened = False
    while True:
        # A value is due at the next character, or a container just entered closes.
        char = window.next_char()
        if opened:
            opened = False
            if char != _CLOSER[entered[-1].opener]:
                _read_key(entered[-1], window, scan, piece)
                continue
            window.pos += 1
            value = _closed(entered.pop(), hook)
        else:
            if entered and entered[-1].opener == "[" and _batch(window, scan_batch, entered[-1]):
                continue
            value = _scan(window, scan, piece)
            if value is _ENTER:
                entered.append(_Entered(char))
                window.pos += 1
                opened = True
                continue
        # A value is complete: it goes into its container, which may be complete too.
        while True:
            if not entered:
                if window.next_char():
                    raise window.error("Extra data")
                return value
            container = entered[-1]
            if container.opener == "[":
                container.items.append(value)
                container.last = window.text[window.pos - 1]
            else:
                container.pairs.append((container.key, value))
            char = window.next_char()
            if char == ",":
                window.pos += 1
                _read_key(container, window, scan, piece)
                break
            if char != _CLOSER[container.opener]:
                raise window.error("Expecting ',' delimiter")
            window.pos += 1
            value = _closed(entered.pop(), hook)


def _read_key(container: _Entered, window: _Window, scan: _Scanner, piece: int) -> None:
    """For an object: its next key and the colon after it, leaving `pos` at the value."""
    if container.opener != "{":
        return
    if window.next_char() != '"':
        raise window.error("Expecting property name enclosed in double quotes")
    container.key = _scan(window, scan, piece)
    if window.next_char() != ":":
        raise window.error("Expecting ':' delimiter")
    window.pos += 1


def _closed(container: _Entered, hook: _Hook) -> Any:
    return container.items if container.opener == "[" else hook(container.pairs)
