"""Every optional field of every answer model: an unreadable value never fails the answer."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async._convert import json_name, structure
from transactionlink_async.models import (
    AuthTokens,
    Case,
    CaseDocument,
    PartyDetails,
    WorkflowExecution,
)
from transactionlink_async.testing import FakeTransactionLink

SECRET = "tok-S3CR3T-value"

#: One complete, readable answer per model the SDK reads from the API.
FULL_ANSWERS: dict[type[Any], dict[str, Any]] = {
    WorkflowExecution: {
        "id": "0b7f4a53-3f0d-4c5c-9d1e-6f1f5e0a9c11",
        "status": "RUNNING",
        "workflowDefinitionId": "d",
        "caseId": "c",
        "recordId": "r",
        "workspaceId": "w",
        "name": "KYC",
        "revision": "7",
        "locale": "en",
        "parameters": {"amount": 12.5},
        "expiresAt": "2026-03-01T12:30:00Z",
        "executionType": "INTERACTIVE",
        "executionVersion": 3,
        "uiOptions": {"theme": "dark"},
        "link": "https://app.example/w/abc",
        "token": SECRET,
        "origin": {"type": "API"},
    },
    Case: {
        "caseId": "c1",
        "partyId": "p1",
        "createdDate": "2024-02-03T04:05:06Z",
        "partyDetails": {"personal": {"firstName": "Ada"}, "documents": [{"resourceId": "r"}]},
    },
    PartyDetails: {"personal": {"a": 1}, "business": {"b": 2}, "documents": [{"resourceId": "r"}]},
    CaseDocument: {"resourceId": "r", "resourceName": "a.pdf", "resourcePath": "/a.pdf"},
    AuthTokens: {
        "accessToken": "a.b.c",
        "refreshToken": "rt",
        "expiryDuration": 3600,
        "tokenType": "Bearer",
    },
}

OPTIONAL_FIELDS = [
    pytest.param(model, json_name(field.name), id=f"{model.__name__}.{json_name(field.name)}")
    for model in FULL_ANSWERS
    for field in attrs.fields(model)
    if field.default is not attrs.NOTHING
]

# What json.loads can make of an answer, NaN and Infinity included.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def test_every_answer_model_is_covered() -> None:
    assert {m.__name__ for m in FULL_ANSWERS} >= {"WorkflowExecution", "Case", "AuthTokens"}
    for model, answer in FULL_ANSWERS.items():
        # The full answers set every field: a field left out would be checked against None.
        assert set(answer) == {json_name(f.name) for f in attrs.fields(model)}, model


@pytest.mark.parametrize(("model", "key"), OPTIONAL_FIELDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_any_value_of_an_optional_field_keeps_the_answer(
    model: type[Any], key: str, value: Any
) -> None:
    answer = FULL_ANSWERS[model]
    readable = structure(answer, model)
    parsed = structure(answer | {key: value}, model)
    for field in attrs.fields(model):
        if json_name(field.name) != key:
            assert getattr(parsed, field.name) == getattr(readable, field.name), field.name


# -- answers the vendor's OpenAPI allows, read literally (a string is any string) ---------

SPEC_PATH = Path(__file__).parents[2] / "shared" / "spec" / "workflows-v3.openapi.json"
EXECUTION_SCHEMAS = [
    "InitialiseWorkflowBackgroundResponse",
    "InitialiseWorkflowInteractiveResponse",
    "FindWorkflowResponse",
]


@cache
def _schemas() -> Mapping[str, Any] | None:
    if not SPEC_PATH.is_file():
        return None
    schemas: Mapping[str, Any] = json.loads(SPEC_PATH.read_text("utf-8"))["components"]["schemas"]
    return schemas


needs_spec = pytest.mark.skipif(_schemas() is None, reason=f"no vendor OpenAPI at {SPEC_PATH}")


def literal(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Documents the schema allows, with no reading between its lines."""
    ref = schema.get("$ref")
    if ref is not None:
        schemas = _schemas()
        assert schemas is not None
        return literal(schemas[ref.rsplit("/", 1)[1]])
    kind, fmt = schema.get("type"), schema.get("format")
    base: st.SearchStrategy[Any]
    if "enum" in schema:
        base = st.sampled_from(schema["enum"])
    elif fmt == "date-time":
        base = st.datetimes().map(lambda d: d.isoformat() + "Z")
    elif kind == "uuid" or fmt == "uuid":  # `type: uuid` is a defect of the file: a string
        base = st.uuids().map(str)
    elif kind == "string":
        base = st.text(max_size=20)
    elif kind == "number":
        base = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "integer":
        base = st.integers()
    elif kind == "boolean":
        base = st.booleans()
    elif kind == "array":
        base = st.lists(literal(schema.get("items", {})), max_size=3)
    elif "properties" in schema:
        properties: Mapping[str, Any] = schema["properties"]
        required = set(schema.get("required", ()))
        base = st.fixed_dictionaries(
            {k: literal(s) for k, s in properties.items() if k in required},
            optional={k: literal(s) for k, s in properties.items() if k not in required},
        )
    else:
        base = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
    return base | st.none() if schema.get("nullable") else base


@needs_spec
@pytest.mark.parametrize("schema_name", EXECUTION_SCHEMAS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_answer_the_vendor_schema_allows_is_read(
    schema_name: str, data: st.DataObject
) -> None:
    schemas = _schemas()
    assert schemas is not None
    document = data.draw(literal(schemas[schema_name]), label=schema_name)
    execution = structure(document, WorkflowExecution)
    assert execution.id == document["id"]
    assert execution.token == document.get("token")


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_initialise_keeps_an_execution_whose_expiry_it_cannot_read(
    fake: FakeTransactionLink,
) -> None:
    answer = FULL_ANSWERS[WorkflowExecution] | {"expiresAt": "string", "status": "INITIALISED"}
    fake.inject("POST", "/workflows", status=200, body=answer)
    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="d", locale="en")
    assert execution.id == answer["id"]
    assert execution.link == answer["link"]
    assert execution.token == SECRET
    assert execution.expires_at is None


LOG_ONCE = """
import logging, sys
from transactionlink_async._convert import structure_execution
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(levelname)s %(message)s")
for _ in range(3):
    structure_execution({"id": "e", "status": "RUNNING", "expiresAt": "never", "token": "T0K"})
"""


def test_an_unreadable_field_is_logged_once_at_debug_without_its_value() -> None:
    # In a fresh process: "once" is once per process.
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", LOG_ONCE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[1],
        check=True,
    )
    lines = [line for line in done.stdout.splitlines() if "expiresAt" in line]
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith(logging.getLevelName(logging.DEBUG))
    assert "WorkflowExecution.expiresAt" in lines[0]
    assert "never" not in lines[0]
    assert "T0K" not in done.stdout
