"""Tests of the attrs models: statuses, finality, immutability, and secrets kept out of repr."""

from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

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
    WorkflowExecution,
    WorkflowStatus,
    is_final_status,
)

FINAL = {"COMPLETED", "FAILED", "TIMEOUT", "TERMINATED", "EXPIRED", "CANCELLED"}
NOT_FINAL = {"INITIALISED", "CREATED", "RUNNING", "AWAITING", "PAUSED"}


def test_the_eleven_documented_statuses() -> None:
    assert {s.value for s in WorkflowStatus} == FINAL | NOT_FINAL
    assert len(WorkflowStatus) == 11
    for status in WorkflowStatus:
        assert status.name == status.value


@pytest.mark.parametrize("status", list(WorkflowStatus))
def test_is_final_for_every_status(status: WorkflowStatus) -> None:
    expected = status.value in FINAL
    assert status.is_final is expected
    assert is_final_status(status) is expected
    # A raw string equal to a known value counts as that value.
    assert is_final_status(status.value) is expected
    assert WorkflowExecution(id="e", status=status).is_final is expected


@pytest.mark.parametrize("raw", ["SUSPENDED", "completed", "", " COMPLETED", "Completed"])
def test_unknown_status_strings_are_not_final(raw: str) -> None:
    assert is_final_status(raw) is False
    execution = WorkflowExecution(id="e", status=raw)
    assert execution.is_final is False
    assert execution.is_known_status is False


def test_known_status_flag() -> None:
    assert WorkflowExecution(id="e", status=WorkflowStatus.RUNNING).is_known_status


def test_status_behaves_as_its_string() -> None:
    assert WorkflowStatus.COMPLETED == "COMPLETED"
    assert str(WorkflowStatus.COMPLETED) == "COMPLETED"
    assert f"{WorkflowStatus.PAUSED}" == "PAUSED"
    assert WorkflowStatus("AWAITING") is WorkflowStatus.AWAITING


def test_execution_defaults_everything_but_id_and_status() -> None:
    execution = WorkflowExecution(id="e", status=WorkflowStatus.CREATED)
    for field in attrs.fields(WorkflowExecution):
        if field.name not in ("id", "status"):
            assert getattr(execution, field.name) is None, field.name


def test_models_are_frozen_and_keyword_only() -> None:
    execution = WorkflowExecution(id="e", status="RUNNING")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        execution.status = "COMPLETED"  # type: ignore[misc, assignment]
    with pytest.raises(TypeError):
        WorkflowExecution("e", "RUNNING")  # type: ignore[call-arg]
    assert attrs.evolve(execution, status="COMPLETED").status == "COMPLETED"


@pytest.mark.parametrize(
    "cls",
    [WorkflowExecution, Case, PartyDetails, CaseDocument, Phone, Parameters, AuthTokens],
)
def test_models_use_slots(cls: Any) -> None:
    required = {f.name: "x" for f in attrs.fields(cls) if f.default is attrs.NOTHING}
    assert "__slots__" in vars(cls)
    assert not hasattr(cls(**required), "__dict__")


def test_execution_repr_hides_the_token_and_the_links_query() -> None:
    execution = WorkflowExecution(
        id="e-1",
        status=WorkflowStatus.CREATED,
        token="s3cr3t-token",
        link="https://app.example/widget/e-1?token=s3cr3t-token#frag",
    )
    for text in (repr(execution), str(execution), f"{execution}"):
        assert "s3cr3t-token" not in text
        assert "https://app.example/widget/e-1?..." in text
        assert "e-1" in text
    # The value itself is still there for whoever needs it.
    assert execution.token == "s3cr3t-token"


def test_execution_repr_with_plain_link_and_no_link() -> None:
    assert "link='https://app.example/w'" in repr(
        WorkflowExecution(id="e", status="X", link="https://app.example/w")
    )
    assert "link=None" in repr(WorkflowExecution(id="e", status="X"))


def test_auth_tokens_repr_hides_both_tokens() -> None:
    tokens = AuthTokens(
        access_token="acc-s3cr3t", refresh_token="ref-s3cr3t", expiry_duration=3600.0
    )
    for text in (repr(tokens), str(tokens)):
        assert "s3cr3t" not in text
        assert "3600" in text
    assert tokens.access_token == "acc-s3cr3t"
    assert tokens.refresh_token == "ref-s3cr3t"
    assert AuthTokens(access_token="a").refresh_token is None


def test_models_with_json_objects_stay_hashable_and_comparable() -> None:
    a = WorkflowExecution(id="e", status="RUNNING", parameters={"k": [1]}, origin={"type": "API"})
    b = WorkflowExecution(id="e", status="RUNNING", parameters={"k": [1]}, origin={"type": "API"})
    c = WorkflowExecution(id="e", status="RUNNING", parameters={"k": [2]})
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    request = LaunchRequest(workflow_definition_id="w", locale="en", parameters={"x": {}})
    assert hash(request) == hash(attrs.evolve(request))


def test_a_case_without_details_reads_as_absent_not_empty() -> None:
    # What the SDK gives for the fields an answer left out.
    case = Case(case_id="c")
    assert (case.party_id, case.created_date, case.party_details) == (None, None, None)
    details = PartyDetails()
    assert (details.personal, details.business, details.documents) == (None, None, ())
    assert attrs.asdict(CaseDocument()) == dict.fromkeys(
        ("resource_id", "resource_name", "resource_path")
    )


def test_party_details_with_json_objects_stay_hashable() -> None:
    created = datetime(2024, 5, 1, tzinfo=timezone.utc)
    one = Case(case_id="c", created_date=created, party_details=PartyDetails(personal={"a": [1]}))
    other = Case(case_id="c", created_date=created, party_details=PartyDetails(personal={"a": [2]}))
    assert one != other
    assert len({one, other}) == 2


def test_phone_and_parameters_need_every_field_by_name() -> None:
    with pytest.raises(TypeError):
        Phone(country_code="+48")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Phone("+48", "600100200")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Parameters()  # type: ignore[call-arg]


def test_error_models_default_to_empty_values() -> None:
    # An error answer that left a part out still reads: "" codes, no fingerprint, no errors.
    assert attrs.asdict(ErrorDetail()) == {"code": "", "message": ""}
    assert attrs.asdict(ErrorResponse()) == {"fingerprint": None, "errors": ()}


def test_launch_request_defaults() -> None:
    request = LaunchRequest(workflow_definition_id="w", locale="en")
    assert request.parameters is None
    assert request.expires_at is None
    assert request.record_id is None
