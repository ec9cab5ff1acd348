"""JSON bytes parsed a piece at a time: json.loads's values and errors, the loop running."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactionlink_async._download.json_pieces import loads_in_pieces

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too: json writes and reads them
    | st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates too
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=4), inner)
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "utf-32"])


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A JSON document as a server might write it: any layout, any of json's encodings."""
    text = json.dumps(
        draw(VALUES),
        indent=draw(st.none() | st.integers(0, 2)),
        separators=draw(st.sampled_from([None, (",", ":"), (" , ", " : ")])),
        ensure_ascii=draw(st.booleans()),
    )
    return text.encode(draw(ENCODINGS), "surrogatepass")


def outcome(parse: Any, data: bytes) -> str:
    """What a parse gives, comparable when NaN is in it: the value's repr, or ValueError."""
    try:
        return repr(parse(data))
    except ValueError:
        return "ValueError"


@settings(max_examples=300)
@given(documents(), st.integers(1, 40))
def test_values_are_those_of_json_loads_whatever_the_pieces(data: bytes, piece: int) -> None:
    assert outcome(lambda d: loads_in_pieces(d, piece), data) == repr(json.loads(data))


@settings(max_examples=500)
@given(documents(), st.data(), st.integers(1, 12))
def test_broken_documents_fail_as_json_loads_fails(
    data: bytes, draw: st.DataObject, piece: int
) -> None:
    # Cut short, or a character of JSON's own put in anywhere: either both parse it to
    # the same value or both refuse it.
    where = draw.draw(st.integers(0, len(data)))
    text = draw.draw(st.sampled_from(['"', ",", ":", "[", "]", "{", "}", "\\", "1", "e", " ", ""]))
    broken = data[:where] if not text else data[:where] + text.encode() + data[where:]
    ours = outcome(lambda d: loads_in_pieces(d, piece), broken)
    assert ours == outcome(json.loads, broken)


def test_keys_are_shared_as_json_loads_shares_them() -> None:
    # One str per key for all the members read in one window, and for those read one
    # at a time: not one per member, which for records of a few fields doubles memory.
    document = json.dumps([{"name": n, "tags": ["a"]} for n in range(2000)]).encode()
    piece = 1024
    records = loads_in_pieces(document, piece)
    keys = {id(key) for record in records for key in record if key == "name"}
    assert len(keys) <= len(document) // piece + 2, len(keys)


@pytest.mark.parametrize("piece", [1, 5, 4096])
def test_a_scalar_longer_than_many_pieces_is_read_whole(piece: int) -> None:
    text = "é\\u00e9\\ud83d\\ude00" * 20_000
    document = f'{{"long": "{text}", "digits": {"7" * 4000}}}'.encode()
    assert loads_in_pieces(document, piece) == json.loads(document)


def test_an_error_names_its_place_in_the_whole_document() -> None:
    with pytest.raises(ValueError, match="character 13"):
        loads_in_pieces(b"[1, 2, 3, 4, x, 6, 7, 8, 9, 10]", 2)


@pytest.mark.parametrize(
    "data", [b'["\xff"]', b'["caf\xc3"]', b'{"a": 1}\xe9'], ids=["byte", "cut", "after"]
)
def test_bytes_that_are_not_text_raise_unicode_decode_error(data: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        loads_in_pieces(data, 3)


def test_a_character_split_between_pieces_is_decoded_whole() -> None:
    assert loads_in_pieces('["café", "😀"]'.encode(), 1) == ["café", "😀"]


@pytest.mark.parametrize("opener", [b"[", b'{"a": '])
def test_containers_nested_deep_past_many_windows_are_read_whole(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    document = opener * 300 + b"[" + b"1, " * 20_000 + b"1]" + closer * 300
    assert loads_in_pieces(document, 64) == json.loads(document)
