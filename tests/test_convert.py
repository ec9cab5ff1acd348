"""Tests of the JSON <-> model converter, with documents generated from the vendor's OpenAPI."""

import contextlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transactionlink_async._convert import (
    ConversionError,
    json_name,
    structure,
    structure_execution,
    unstructure,
)
from transactionlink_async._datetimes import format_datetime, parse_datetime
from transactionlink_async.models import (
    AuthTokens,
    Case,
    CaseDocument,
    ErrorDetail,
    ErrorResponse,
    LaunchRequest,
    Parameters,
    PartyDetails,
    Phone,
    UnknownStatus,
    WorkflowExecution,
    WorkflowStatus,
)

UTC = timezone.utc
SECRET = "tok-S3CR3T-value"

FIND_WORKFLOW_ANSWER: dict[str, Any] = {
    "id": "0b7f4a53-3f0d-4c5c-9d1e-6f1f5e0a9c11",
    "workspaceId": "a1b2c3d4-0000-4000-8000-000000000001",
    "workflowDefinitionId": "d1d2d3d4-0000-4000-8000-000000000002",
    "parameters": {"amount": 12.5, "nested": {"k": [1, None]}},
    "name": "KYC",
    "revision": "7",
    "status": "RUNNING",
    "locale": "en",
    "expiresAt": "2026-03-01T12:30:00Z",
    "uiOptions": {"theme": "dark"},
    "executionType": "INTERACTIVE",
    "executionVersion": 3,
    "token": SECRET,
    "link": f"https://app.transactionlink.io/w/abc?token={SECRET}",
    "recordId": "e1e2e3e4-0000-4000-8000-000000000003",
    "origin": {"type": "API", "apiKeyId": "k"},
}


# --- field mapping


def test_find_workflow_answer_maps_every_field() -> None:
    execution = structure(FIND_WORKFLOW_ANSWER, WorkflowExecution)
    assert execution == WorkflowExecution(
        id="0b7f4a53-3f0d-4c5c-9d1e-6f1f5e0a9c11",
        status=WorkflowStatus.RUNNING,
        workspace_id="a1b2c3d4-0000-4000-8000-000000000001",
        workflow_definition_id="d1d2d3d4-0000-4000-8000-000000000002",
        parameters={"amount": 12.5, "nested": {"k": [1, None]}},
        name="KYC",
        revision="7",
        locale="en",
        expires_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        ui_options={"theme": "dark"},
        execution_type="INTERACTIVE",
        execution_version=3,
        token=SECRET,
        link=f"https://app.transactionlink.io/w/abc?token={SECRET}",
        record_id="e1e2e3e4-0000-4000-8000-000000000003",
        origin={"type": "API", "apiKeyId": "k"},
    )
    assert execution.status is WorkflowStatus.RUNNING
    assert SECRET not in repr(execution)
    assert structure_execution(FIND_WORKFLOW_ANSWER) == execution


def test_v1_run_answer_parses_as_an_execution() -> None:
    execution = structure_execution({"id": "w1", "caseId": "c1", "status": "CREATED"})
    assert execution == WorkflowExecution(id="w1", case_id="c1", status=WorkflowStatus.CREATED)


def test_execution_version_keeps_the_json_number_type() -> None:
    assert (
        structure_execution({"id": "e", "status": "X", "executionVersion": 2.5}).execution_version
        == 2.5
    )
    version = structure_execution(
        {"id": "e", "status": "X", "executionVersion": 2}
    ).execution_version
    assert version == 2
    assert isinstance(version, int)


def test_nulls_read_as_absent() -> None:
    document = {key: None for key in FIND_WORKFLOW_ANSWER} | {"id": "e", "status": "RUNNING"}
    assert structure_execution(document) == WorkflowExecution(id="e", status="RUNNING")


def test_unknown_fields_are_ignored_everywhere() -> None:
    execution = structure_execution(
        FIND_WORKFLOW_ANSWER | {"brandNewField": {"deep": [1]}, "id_": 3, "ID": None}
    )
    assert execution == structure_execution(FIND_WORKFLOW_ANSWER)
    case = structure(
        {
            "caseId": "c",
            "extra": 1,
            "partyDetails": {"documents": [{"resourceId": "r", "mime": "x"}], "other": True},
        },
        Case,
    )
    assert case.party_details == PartyDetails(documents=(CaseDocument(resource_id="r"),))
    assert structure({"accessToken": "a", "scope": "all"}, AuthTokens) == AuthTokens(
        access_token="a"
    )


def test_snake_case_keys_are_not_read() -> None:
    # The API speaks camelCase; a snake_case key is just another unknown field.
    execution = structure_execution({"id": "e", "status": "RUNNING", "case_id": "c"})
    assert execution.case_id is None


@pytest.mark.parametrize("status", list(WorkflowStatus))
def test_known_statuses_become_the_enum(status: WorkflowStatus) -> None:
    execution = structure_execution({"id": "e", "status": status.value})
    assert execution.status is status
    assert execution.is_final is status.is_final


@pytest.mark.parametrize("raw", ["SUSPENDED", "completed", "", "RUNNING "])
def test_unknown_statuses_are_kept_raw_and_not_final(raw: str) -> None:
    execution = structure_execution({"id": "e", "status": raw})
    assert execution.status == raw
    assert type(execution.status) is UnknownStatus
    assert not execution.is_final
    assert not execution.is_known_status
    assert unstructure(execution)["status"] == raw


def test_case_answer() -> None:
    case = structure(
        {
            "caseId": "c1",
            "partyId": "p1",
            "createdDate": "2024-02-03T04:05:06.789+01:00",
            "partyDetails": {
                "personal": {"firstName": "Ada", "phone": {"countryCode": "+48"}},
                "business": None,
                "documents": [
                    {"resourceId": "r1", "resourceName": "a.pdf", "resourcePath": "/x/a.pdf"}
                ],
            },
        },
        Case,
    )
    assert case == Case(
        case_id="c1",
        party_id="p1",
        created_date=datetime(2024, 2, 3, 3, 5, 6, 789000, tzinfo=UTC),
        party_details=PartyDetails(
            personal={"firstName": "Ada", "phone": {"countryCode": "+48"}},
            documents=(
                CaseDocument(resource_id="r1", resource_name="a.pdf", resource_path="/x/a.pdf"),
            ),
        ),
    )


def test_null_documents_mean_none() -> None:
    case = structure({"caseId": "c", "partyDetails": {"documents": None}}, Case)
    assert case.party_details == PartyDetails()


def test_epoch_milliseconds_and_seconds_are_read_as_utc() -> None:
    millis = structure({"caseId": "c", "createdDate": 1_700_000_000_123}, Case)
    seconds = structure({"caseId": "c", "createdDate": 1_700_000_000}, Case)
    assert millis.created_date == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert seconds.created_date == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize("key", ["id", "parametersId"])
def test_parameters_id_under_either_key(key: str) -> None:
    assert structure({key: "p-1", "other": 1}, Parameters) == Parameters(id="p-1")


def test_parameters_prefers_id_and_falls_back_on_null() -> None:
    assert structure({"id": "a", "parametersId": "b"}, Parameters).id == "a"
    assert structure({"id": None, "parametersId": "b"}, Parameters).id == "b"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({}, "neither 'id' nor 'parametersId' is present"),
        ({"parametersId": 5}, "not a string"),
        (["p"], "expected an object, got array"),
    ],
)
def test_parameters_without_a_usable_id(document: Any, reason: str) -> None:
    with pytest.raises(ConversionError, match=reason) as caught:
        structure(document, Parameters)
    assert caught.value.model == "Parameters"


def test_auth_tokens() -> None:
    tokens = structure(
        {"accessToken": "a", "refreshToken": "r", "expiryDuration": 3600, "tokenType": "Bearer"},
        AuthTokens,
    )
    assert tokens == AuthTokens(
        access_token="a", refresh_token="r", expiry_duration=3600.0, token_type="Bearer"
    )
    assert isinstance(tokens.expiry_duration, float)
    assert structure({"accessToken": "a", "expiryDuration": "60"}, AuthTokens).expiry_duration == 60
    with pytest.raises(ConversionError, match="'accessToken' is missing"):
        structure({"refreshToken": "r"}, AuthTokens)
    # An optional field the SDK cannot read is as good as absent: the token still serves.
    unreadables: list[object] = [True, "PT1H", "3600s", "NaN", float("inf"), [], {}]
    for unreadable in unreadables:
        tokens = structure({"accessToken": "a", "expiryDuration": unreadable}, AuthTokens)
        assert tokens == AuthTokens(access_token="a")
    assert structure(
        {"accessToken": "a", "refreshToken": 42, "tokenType": 5}, AuthTokens
    ) == AuthTokens(access_token="a")


def test_error_response() -> None:
    response = structure(
        {
            "fingerprint": "fp-1",
            "errors": [{"code": "E1", "message": "bad"}, {"code": "E2", "message": "worse"}],
        },
        ErrorResponse,
    )
    assert response == ErrorResponse(
        fingerprint="fp-1",
        errors=(ErrorDetail(code="E1", message="bad"), ErrorDetail(code="E2", message="worse")),
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, ErrorResponse()),
        ({"fingerprint": None, "errors": None}, ErrorResponse()),
        ({"errors": [{}]}, ErrorResponse(errors=(ErrorDetail(),))),
        ({"errors": [{"code": "C"}]}, ErrorResponse(errors=(ErrorDetail(code="C"),))),
        ({"errors": [{"message": "m"}]}, ErrorResponse(errors=(ErrorDetail(message="m"),))),
        (
            {"fingerprint": 42, "errors": [{"code": 400, "message": None}, "plain", 7]},
            ErrorResponse(
                fingerprint="42", errors=(ErrorDetail(code="400"), ErrorDetail(message="plain"))
            ),
        ),
        ({"errors": "oops", "status": 500, "error": "Internal"}, ErrorResponse()),
    ],
)
def test_error_response_is_tolerant(document: Any, expected: ErrorResponse) -> None:
    assert structure(document, ErrorResponse) == expected


def test_error_response_must_still_be_an_object() -> None:
    with pytest.raises(ConversionError, match="ErrorResponse: expected an object, got string"):
        structure("Internal Server Error", ErrorResponse)


# --- datetimes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:30:00Z", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00z", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00+00:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T14:30:00+02:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T14:30:00+0200", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T14:30:00+02", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T07:00:00-05:30", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00.1Z", datetime(2026, 3, 1, 12, 30, 0, 100000, tzinfo=UTC)),
        ("2026-03-01T12:30:00.12Z", datetime(2026, 3, 1, 12, 30, 0, 120000, tzinfo=UTC)),
        ("2026-03-01T12:30:00.1234Z", datetime(2026, 3, 1, 12, 30, 0, 123400, tzinfo=UTC)),
        ("2026-03-01T12:30:00.12345Z", datetime(2026, 3, 1, 12, 30, 0, 123450, tzinfo=UTC)),
        ("2026-03-01T12:30:00.1234567Z", datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T12:30:00.123456789Z", datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T12:30:00,5+01:00", datetime(2026, 3, 1, 11, 30, 0, 500000, tzinfo=UTC)),
        # Naive means UTC.
        ("2026-03-01T12:30:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00.000999999", datetime(2026, 3, 1, 12, 30, 0, 999, tzinfo=UTC)),
        ("2026-03-01 12:30:00", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_datetime_forms(text: str, expected: datetime) -> None:
    parsed = structure_execution({"id": "e", "status": "X", "expiresAt": text}).expires_at
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() is not None


def test_offsets_are_kept_not_just_the_instant() -> None:
    parsed = parse_datetime("2026-03-01T14:30:00+02:00")
    assert parsed.utcoffset() == timedelta(hours=2)
    assert parsed.hour == 14


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-03-01T25:00:00Z",
        "2026-03-01T12:30:00+24:00",
        "2026-03-01T12:30:00ZZ",
        "2026-03-01T12:30:00.Z",
        "2026-03-01Z",
        " 2026-03-01T12:30:00Z",
        "20260301T123000Z",
    ],
)
def test_bad_datetimes_read_as_absent(text: str) -> None:
    document = {"id": "e", "status": "RUNNING", "expiresAt": text, "token": SECRET}
    execution = structure_execution(document)
    assert execution == WorkflowExecution(id="e", status=WorkflowStatus.RUNNING, token=SECRET)


def test_datetimes_are_written_in_utc_with_z() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2026, 3, 1, 13, 30, tzinfo=paris)) == "2026-03-01T12:30:00Z"
    assert (
        format_datetime(datetime(2026, 3, 1, 12, 30, 0, 5, tzinfo=UTC))
        == "2026-03-01T12:30:00.000005Z"
    )
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2026, 3, 1))


# --- errors


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        ({"status": "RUNNING"}, "id", "field 'id' is missing"),
        ({"id": "e"}, "status", "field 'status' is missing"),
        ({"id": 7, "status": "RUNNING"}, "id", "field 'id': expected a string, got number"),
        ({"id": None, "status": "RUNNING"}, "id", "field 'id': expected a string, got null"),
        ({"id": "e", "status": 3}, "status", "expected a status string, got number"),
        ({"id": "e", "status": None}, "status", "expected a status string, got null"),
    ],
)
def test_bad_executions_raise_conversion_error(
    document: dict[str, Any], field: str, fragment: str
) -> None:
    document = document | {"token": SECRET, "link": f"https://x/?t={SECRET}"}
    with pytest.raises(ConversionError) as caught:
        structure_execution(document)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.model == "WorkflowExecution"
    assert error.field == field
    assert fragment in str(error)
    assert str(error).startswith("cannot read WorkflowExecution: ")
    assert SECRET not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize(
    ("document", "kind"),
    [([], "array"), ("text", "string"), (None, "null"), (3, "number"), (True, "boolean")],
)
def test_a_document_that_is_not_an_object(document: Any, kind: str) -> None:
    with pytest.raises(ConversionError, match=f"expected an object, got {kind}$") as caught:
        structure_execution(document)
    assert caught.value.field is None


@pytest.mark.parametrize(
    ("document", "kept"),
    [
        ({"id": "e", "status": "X", "parameters": []}, {}),
        ({"id": "e", "status": "X", "name": {}}, {}),
        ({"id": "e", "status": "X", "executionVersion": "3"}, {}),
        ({"id": "e", "status": "X", "executionVersion": True}, {}),
        ({"id": "e", "status": "X", "expiresAt": 1e300}, {}),
        (
            {"id": "e", "status": "X", "expiresAt": "string", "link": "https://x/"},
            {"link": "https://x/"},
        ),
    ],
)
def test_unreadable_optional_fields_read_as_absent(
    document: dict[str, Any], kept: dict[str, Any]
) -> None:
    execution = structure_execution(document | {"token": SECRET})
    assert execution == WorkflowExecution(id="e", status="X", token=SECRET, **kept)


def test_nested_unreadable_fields_read_as_absent() -> None:
    document = {
        "caseId": "c",
        "partyDetails": {
            "documents": [{"resourceId": "ok"}, {"resourceName": 5, "resourceId": "b"}]
        },
    }
    assert structure(document, Case) == Case(
        case_id="c",
        party_details=PartyDetails(
            documents=(CaseDocument(resource_id="ok"), CaseDocument(resource_id="b"))
        ),
    )
    bad_list = {"caseId": "c", "partyDetails": {"documents": {"a": 1}, "personal": {"n": 1}}}
    assert structure(bad_list, Case) == Case(
        case_id="c", party_details=PartyDetails(personal={"n": 1})
    )
    assert structure({"caseId": "c", "partyDetails": "x"}, Case) == Case(case_id="c")


def test_all_problems_are_counted() -> None:
    with pytest.raises(ConversionError, match=r"'id' is missing \(and 1 more problem\)$"):
        structure_execution({"name": 1})


# --- unstructure


def test_unstructure_writes_camel_case_and_leaves_out_unset_fields() -> None:
    execution = WorkflowExecution(
        id="e",
        status=WorkflowStatus.COMPLETED,
        workflow_definition_id="w",
        ui_options={"a": None},
        expires_at=datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    )
    assert unstructure(execution) == {
        "id": "e",
        "status": "COMPLETED",
        "workflowDefinitionId": "w",
        "uiOptions": {"a": None},
        "expiresAt": "2026-01-01T00:00:00Z",
    }
    assert type(unstructure(execution)["status"]) is str


def test_unstructure_launch_request_is_a_post_workflows_body() -> None:
    request = LaunchRequest(
        workflow_definition_id="wd",
        locale="en",
        parameters={"amount": 5, "note": None},
        expires_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        record_id="r",
    )
    body = unstructure(request)
    assert body == {
        "workflowDefinitionId": "wd",
        "locale": "en",
        "parameters": {"amount": 5, "note": None},
        "expiresAt": "2026-01-02T03:04:05Z",
        "recordId": "r",
    }
    json.dumps(body)
    # `parameters` is required by POST /workflows, even when empty.
    assert unstructure(LaunchRequest(workflow_definition_id="wd", locale="en")) == {
        "workflowDefinitionId": "wd",
        "locale": "en",
        "parameters": {},
    }


def test_unstructure_refuses_naive_datetimes() -> None:
    request = LaunchRequest(
        workflow_definition_id="w", locale="en", expires_at=datetime(2026, 1, 1)
    )
    with pytest.raises(ConversionError, match="cannot write LaunchRequest: naive datetime"):
        unstructure(request)


def test_unstructure_nested_models_and_tuples() -> None:
    case = Case(
        case_id="c",
        party_details=PartyDetails(documents=(CaseDocument(resource_id="r"),)),
    )
    assert unstructure(case) == {
        "caseId": "c",
        "partyDetails": {"documents": [{"resourceId": "r"}]},
    }
    assert unstructure(Phone(country_code="+48", number="1")) == {
        "countryCode": "+48",
        "number": "1",
    }
    assert unstructure([Parameters(id="p")]) == [{"id": "p"}]
    assert unstructure({"phone": Phone(country_code="+1", number="2")}) == {
        "phone": {"countryCode": "+1", "number": "2"}
    }


@pytest.mark.parametrize(
    "model",
    [
        WorkflowExecution(
            id="e",
            status="SOMETHING_NEW",
            parameters={"x": [1, {"y": None}]},
            expires_at=datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            execution_version=1.5,
            token=SECRET,
            link="https://l",
        ),
        Case(case_id="c", created_date=datetime(2020, 2, 29, tzinfo=UTC)),
        AuthTokens(access_token="a", refresh_token="r", expiry_duration=60.0, token_type="Bearer"),
        ErrorResponse(fingerprint="f", errors=(ErrorDetail(code="c", message="m"),)),
        Parameters(id="p"),
    ],
)
def test_round_trip(model: Any) -> None:
    assert structure(json.loads(json.dumps(unstructure(model))), type(model)) == model


def test_json_names() -> None:
    assert json_name("ui_options") == "uiOptions"
    assert json_name("workflow_definition_id") == "workflowDefinitionId"
    assert json_name("id") == "id"


# --- documents generated from the vendor's OpenAPI

SPEC_PATH = Path(__file__).parents[2] / "shared" / "spec" / "workflows-v3.openapi.json"
RESPONSE_SCHEMAS: dict[str, type[Any]] = {
    "InitialiseWorkflowBackgroundResponse": WorkflowExecution,
    "InitialiseWorkflowInteractiveResponse": WorkflowExecution,
    "FindWorkflowResponse": WorkflowExecution,
    "ErrorResponse": ErrorResponse,
}
KNOWN_STATUSES = [s.value for s in WorkflowStatus]

# The SDK reads these as date-times and statuses whatever the schema's `format`/`enum`
# say: only FindWorkflowResponse declares them, but every answer uses the same words.
DATETIME_KEYS = {"expiresAt"}
STATUS_KEYS = {"status"}
# Extra keys must be unknown to the SDK too (the v3 schemas lack e.g. `caseId`).
MODEL_KEYS = {json_name(f.name) for model in RESPONSE_SCHEMAS.values() for f in attrs.fields(model)}


@cache
def _schemas() -> Mapping[str, Any] | None:
    if not SPEC_PATH.is_file():
        return None
    schemas: Mapping[str, Any] = json.loads(SPEC_PATH.read_text("utf-8"))["components"]["schemas"]
    return schemas


needs_spec = pytest.mark.skipif(
    _schemas() is None, reason=f"the vendor's OpenAPI is not at {SPEC_PATH} (shared spec folder)"
)


class DateTimeText(str):
    """A generated date-time string that remembers the instant it should parse to."""

    __slots__ = ("expected",)
    expected: datetime


@st.composite
def datetime_texts(draw: st.DrawFn) -> DateTimeText:
    wall = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)))
    style = draw(st.sampled_from(["Z", "z", "colon", "compact", "hours", "naive"]))
    minutes = 0 if style in ("Z", "z", "naive") else draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    if style == "hours":
        minutes -= minutes % 60 if minutes >= 0 else -((-minutes) % 60)
    digits = draw(st.integers(0, 9))
    micro_text = f"{wall.microsecond:06d}"
    fraction = (micro_text + draw(st.text("0123456789", min_size=3, max_size=3)))[:digits]
    sign, magnitude = ("-" if minutes < 0 else "+"), abs(minutes)
    offset = {
        "Z": "Z",
        "z": "z",
        "naive": "",
        "colon": f"{sign}{magnitude // 60:02d}:{magnitude % 60:02d}",
        "compact": f"{sign}{magnitude // 60:02d}{magnitude % 60:02d}",
        "hours": f"{sign}{magnitude // 60:02d}",
    }[style]
    text = DateTimeText(
        wall.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + offset
    )
    kept_micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    text.expected = wall.replace(
        microsecond=kept_micro, tzinfo=timezone(timedelta(minutes=minutes))
    )
    return text


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=4,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
statuses = st.sampled_from(KNOWN_STATUSES) | st.text(max_size=12).filter(
    lambda s: s not in KNOWN_STATUSES
)


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    schemas = _schemas()
    assert schemas is not None
    return _resolve(schemas[ref.rsplit("/", 1)[1]])


def strategy_for(schema: Mapping[str, Any], key: str | None = None) -> st.SearchStrategy[Any]:
    """A strategy for JSON documents fitting `schema` (the OpenAPI 3.0 subset the spec uses)."""
    schema = _resolve(schema)
    kind, fmt = schema.get("type"), schema.get("format")
    base: st.SearchStrategy[Any]
    if key in STATUS_KEYS:
        base = statuses
    elif key in DATETIME_KEYS or fmt == "date-time":
        base = datetime_texts()
    elif "enum" in schema:
        base = st.sampled_from(schema["enum"])
    elif kind == "uuid" or fmt == "uuid":  # the spec writes both `format: uuid` and `type: uuid`
        base = st.uuids().map(str)
    elif kind == "string":
        base = st.text(max_size=30)
    elif kind == "number":
        base = st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "integer":
        base = st.integers()
    elif kind == "boolean":
        base = st.booleans()
    elif kind == "array":
        base = st.lists(strategy_for(schema.get("items", {})), max_size=3)
    elif "properties" in schema:
        base = object_strategy(schema)
    elif kind == "object":
        base = json_objects
    else:
        base = json_values
    return base | st.none() if schema.get("nullable") else base


def object_strategy(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Required properties always, optional ones sometimes, plus keys the schema never named."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    known = st.fixed_dictionaries(
        {k: strategy_for(s, k) for k, s in properties.items() if k in required},
        optional={k: strategy_for(s, k) for k, s in properties.items() if k not in required},
    )
    extra = st.dictionaries(
        st.text(min_size=1, max_size=12).filter(
            lambda k: k not in properties and k not in MODEL_KEYS
        ),
        json_values,
        max_size=2,
    )
    return st.builds(lambda k, e: e | k, known, extra)


@cache
def document_strategy(name: str) -> st.SearchStrategy[dict[str, Any]]:
    schemas = _schemas()
    assert schemas is not None
    return object_strategy(schemas[name])


def _expected_value(key: str, raw: Any) -> Any:
    if isinstance(raw, DateTimeText):
        return raw.expected
    if key in STATUS_KEYS:
        return WorkflowStatus(raw) if raw in KNOWN_STATUSES else UnknownStatus(raw)
    return raw


def check_execution(document: Mapping[str, Any], execution: WorkflowExecution) -> None:
    by_key = {json_name(f.name): f.name for f in attrs.fields(WorkflowExecution)}
    for key, name in by_key.items():
        value = getattr(execution, name)
        if document.get(key) is None:
            assert value is None, key
        else:
            expected = _expected_value(key, document[key])
            assert value == expected, key
            assert type(value) is type(expected), key
    assert execution.is_known_status is (document["status"] in KNOWN_STATUSES)
    assert execution.is_final is (
        document["status"]
        in {"COMPLETED", "FAILED", "TIMEOUT", "TERMINATED", "EXPIRED", "CANCELLED"}
    )
    written = unstructure(execution)
    assert set(written) == {k for k in by_key if document.get(k) is not None}
    for key, value in written.items():
        if key not in DATETIME_KEYS:
            assert value == document[key], key


def check_error_response(document: Mapping[str, Any], response: ErrorResponse) -> None:
    assert response.fingerprint == document["fingerprint"]
    assert response.errors == tuple(
        ErrorDetail(code=e["code"], message=e["message"]) for e in document["errors"]
    )
    assert unstructure(response) == {
        "fingerprint": document["fingerprint"],
        "errors": [{"code": e["code"], "message": e["message"]} for e in document["errors"]],
    }


CHECKS: dict[type, Callable[[Any, Any], None]] = {
    WorkflowExecution: check_execution,
    ErrorResponse: check_error_response,
}


@needs_spec
@pytest.mark.parametrize("schema_name", sorted(RESPONSE_SCHEMAS))
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_documented_answer_parses_and_round_trips(
    schema_name: str, data: st.DataObject
) -> None:
    model = RESPONSE_SCHEMAS[schema_name]
    document = data.draw(document_strategy(schema_name), label=schema_name)
    parsed = structure(document, model)
    CHECKS[model](document, parsed)
    # The same document as real JSON text parses to the same model, and so does what the
    # SDK writes back.
    assert structure(json.loads(json.dumps(document)), model) == parsed
    assert structure(json.loads(json.dumps(unstructure(parsed))), model) == parsed


@needs_spec
def test_the_spec_still_has_the_schemas_the_sdk_reads() -> None:
    schemas = _schemas()
    assert schemas is not None
    assert set(RESPONSE_SCHEMAS) <= set(schemas)
    fields = {json_name(f.name) for f in attrs.fields(WorkflowExecution)}
    for name, model in RESPONSE_SCHEMAS.items():
        if model is WorkflowExecution:
            # Every documented key has a home in the model (and so is not silently dropped).
            assert set(schemas[name]["properties"]) <= fields, name
    assert schemas["FindWorkflowResponse"]["properties"]["status"]["enum"] == KNOWN_STATUSES


@settings(max_examples=200, deadline=None)
@given(text=datetime_texts())
def test_generated_datetimes_parse_to_their_instant(text: DateTimeText) -> None:
    parsed = parse_datetime(text)
    assert parsed == text.expected
    assert parsed.utcoffset() == text.expected.utcoffset()
    assert parse_datetime(format_datetime(parsed)) == parsed


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_arbitrary_json_never_escapes_as_anything_but_conversion_error(value: Any) -> None:
    for model in (WorkflowExecution, Case, Parameters, AuthTokens):
        with contextlib.suppress(ConversionError):
            structure(value, model)
    assert isinstance(
        structure(value if isinstance(value, dict) else {}, ErrorResponse), ErrorResponse
    )


def test_remembered_parses_stay_few_and_short() -> None:
    from transactionlink_async import _datetimes

    before = _datetimes._parse_cached.cache_info().currsize
    endless = "2026-03-01T14:30:00." + "1" * 100_000 + "Z"
    for n in range(50):
        assert parse_datetime(endless) == parse_datetime("2026-03-01T14:30:00.111111Z")
        assert parse_datetime(f"2026-03-01T14:30:{n % 60:02d}Z").second == n % 60
    # Only the short texts were remembered, however long the others were.
    assert _datetimes._parse_cached.cache_info().currsize - before <= 51
    assert _datetimes._parse_cached.cache_info().maxsize == 4096
