"""The hot path's shortcuts give exactly what the general code gives: the execution reader
against the cattrs converter, and the JSON body parser against json.loads."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transactionlink_async._convert import (
    ConversionError,
    _conversion_error,
    _fast_execution,
    execution_hook,
    json_name,
    structure,
    structure_execution,
)
from transactionlink_async._request import ApiRequest, parse_json
from transactionlink_async.errors import InvalidResponseError
from transactionlink_async.models import WorkflowExecution, WorkflowStatus

KEYS = [json_name(a.name) for a in attrs.fields(WorkflowExecution)]

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
statuses = st.sampled_from([s.value for s in WorkflowStatus]) | st.text(max_size=12)
datetimes_text = st.sampled_from(
    [
        "2026-05-01T10:00:00Z",
        "2026-05-01T10:00:00.123456789+02:00",
        "2026-05-01",
        "2026-13-01T00:00:00Z",  # out of range: cattrs must word the error
        "yesterday",
        "2026-05-01T10:00:00+0200",
    ]
)

# Each field either well-typed for its model type, or any JSON value at all.
well_typed: dict[str, st.SearchStrategy[Any]] = {
    "id": st.text(max_size=12),
    "status": statuses,
    "parameters": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    "uiOptions": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    "origin": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    "executionVersion": st.integers() | st.floats(allow_nan=False),
    "expiresAt": datetimes_text | st.integers(min_value=-(10**13), max_value=10**13),
}


def _field(key: str) -> st.SearchStrategy[Any]:
    typed = well_typed.get(key, st.text(max_size=12))
    return st.one_of(typed, typed, st.none(), json_values)


def _typed(key: str) -> st.SearchStrategy[Any]:
    return well_typed.get(key, st.text(max_size=12))


# Mostly right with one field that may be anything: where a too-lenient fast path shows.
typed_documents = st.fixed_dictionaries(
    {"id": _typed("id"), "status": _typed("status")},
    optional={key: _typed(key) | st.none() for key in KEYS if key not in ("id", "status")},
)
one_wild_field = st.tuples(typed_documents, st.sampled_from(KEYS), json_values).map(
    lambda t: {**t[0], t[1]: t[2]}
)
documents = (
    st.fixed_dictionaries({}, optional={key: _field(key) for key in KEYS} | {"extra": json_values})
    | one_wild_field
    | one_wild_field
)


def _reference(data: Any) -> WorkflowExecution | str:
    """What the cattrs converter alone makes of `data`: the model, or the error text."""
    try:
        result: WorkflowExecution = execution_hook()(data, WorkflowExecution)
    except ConversionError as exc:  # pragma: no cover - the hook raises cattrs' errors
        return str(exc)
    except Exception as exc:
        return str(_conversion_error(exc, "WorkflowExecution"))
    return result


def _same(a: WorkflowExecution, b: WorkflowExecution) -> bool:
    # == compares values; also check types (3 vs 3.0, enum vs raw str) and copies.
    for field in attrs.fields(WorkflowExecution):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if x != y or type(x) is not type(y):
            return False
    return True


@settings(max_examples=600, deadline=None)
@given(documents)
def test_fast_path_agrees_with_cattrs(document: dict[str, Any]) -> None:
    expected = _reference(document)
    try:
        got: WorkflowExecution | str = structure_execution(document)
    except ConversionError as exc:
        got = str(exc)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, WorkflowExecution)
        assert _same(got, expected)


BASE = {"id": "e", "status": "RUNNING", "expiresAt": "2026-05-01T10:00:00Z", "parameters": {}}
ONE_OF_EACH_JSON_KIND = [None, True, False, 0, 7, -2.5, 1e300, "", "text", [], [1], {}, {"a": 1}]


@pytest.mark.parametrize("key", KEYS)
def test_every_field_with_every_kind_of_json_value(key: str) -> None:
    # Exhaustive where hypothesis would only sample: one field wrong at a time.
    for value in ONE_OF_EACH_JSON_KIND:
        document = {**BASE, key: value}
        expected = _reference(document)
        try:
            got: WorkflowExecution | str = structure_execution(document)
        except ConversionError as exc:
            got = str(exc)
        if isinstance(expected, str):
            assert got == expected, (key, value)
        else:
            assert isinstance(got, WorkflowExecution)
            assert _same(got, expected), (key, value)


@settings(max_examples=200, deadline=None)
@given(typed_documents)
def test_well_typed_documents_take_the_fast_path(document: dict[str, Any]) -> None:
    # Without this, a fast path that always declined would pass the test above.
    expires = document.get("expiresAt")
    if expires is not None and not isinstance(expires, str):
        return  # epoch numbers are rare: cattrs reads them
    if expires in ("2026-13-01T00:00:00Z", "yesterday"):
        return
    fast = _fast_execution(document)
    assert fast is not None
    reference = _reference(document)
    assert isinstance(reference, WorkflowExecution)
    assert _same(fast, reference)


def test_free_form_objects_are_copied_not_shared() -> None:
    parameters = {"a": 1}
    execution = structure_execution({"id": "x", "status": "RUNNING", "parameters": parameters})
    parameters["a"] = 2
    assert execution.parameters == {"a": 1}


def test_the_fast_path_reads_every_field_of_the_model() -> None:
    document = {
        "id": "e",
        "status": "COMPLETED",
        "workflowDefinitionId": "d",
        "caseId": "c",
        "recordId": "r",
        "workspaceId": "w",
        "name": "n",
        "revision": "1",
        "locale": "en",
        "parameters": {"p": 1},
        "expiresAt": "2026-05-01T10:00:00Z",
        "executionType": "INTERACTIVE",
        "executionVersion": 3,
        "uiOptions": {"u": 1},
        "link": "https://example.test/x",
        "token": "t",
        "origin": {"type": "API"},
    }
    # A new model field must be added to the fast path (and to this document) too.
    assert set(document) == set(KEYS)
    fast = _fast_execution(document)
    assert fast is not None
    assert all(getattr(fast, a.name) is not None for a in attrs.fields(WorkflowExecution))
    reference = _reference(document)
    assert isinstance(reference, WorkflowExecution)
    assert _same(fast, reference)


@pytest.mark.parametrize("document", [[], "x", None, 3, {"id": 1, "status": "RUNNING"}])
def test_documents_the_fast_path_declines_still_fail_the_same_way(document: Any) -> None:
    assert _fast_execution(document) is None
    with pytest.raises(ConversionError) as fast:
        structure_execution(document)
    with pytest.raises(ConversionError) as general:
        structure(document, WorkflowExecution)
    assert str(fast.value) == str(general.value) == _reference(document)


# -- parse_json ----------------------------------------------------------------------------

REQUEST = ApiRequest(method="GET", path="/workflows/x")


def _loads_reference(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        return type(exc)


def _parse(body: bytes) -> Any:
    try:
        return parse_json(body, REQUEST)
    except InvalidResponseError as exc:
        return type(exc.__cause__)


json_documents = json_values.map(lambda v: json.dumps(v, ensure_ascii=False))
encodings = st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-8-sig", "utf-16"])


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.tuples(json_documents, encodings).map(lambda t: t[0].encode(t[1])),
        st.binary(max_size=40),
        st.binary(max_size=20).map(lambda b: b"{" + b),
        st.binary(max_size=20).map(lambda b: b'{"a": "' + b + b'"}'),
    )
)
@example(b'{"a": "\xed\xa0\x80"}')  # a lone surrogate: json.loads lets it through
@example(b'\xef\xbb\xbf{"a": 1}')  # a UTF-8 byte order mark
@example(b'{"a": "\xff"}')  # not UTF-8 at all
def test_parse_json_reads_bytes_like_json_loads(body: bytes) -> None:
    expected = _loads_reference(body)
    got = _parse(body)
    if isinstance(expected, float) and expected != expected:  # pragma: no cover - NaN
        assert got != got
    else:
        assert got == expected
