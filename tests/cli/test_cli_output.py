"""What the command line prints: tables, execution JSON without secrets, error lines."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from transactionlink_async import NotFoundError, TransportError, WorkflowExecution, WorkflowStatus
from transactionlink_async._cli.output import (
    Output,
    error_json,
    execution_json,
    is_failure,
    public_link,
    table,
)


def test_table_aligns_text_left_and_numbers_right() -> None:
    text = table(["name", "size"], [["a", 5], ["longer", 12345]])
    assert text.splitlines() == [
        "name     size",
        "------  -----",
        "a           5",
        "longer  12345",
    ]


def test_table_shows_missing_cells_as_blank() -> None:
    assert table(["a", "b"], [["x", None]]).splitlines()[-1] == "x"


def test_public_link_hides_query_and_fragment() -> None:
    assert public_link("https://h/p?token=secret#x") == "https://h/p?..."
    assert public_link("https://h/p") == "https://h/p"
    assert public_link(None) is None


def test_execution_json_leaves_out_the_token_and_unset_fields() -> None:
    execution = WorkflowExecution(
        id="e1",
        status=WorkflowStatus.COMPLETED,
        token="very-secret",
        link="https://app/w/e1?t=very-secret",
        expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        parameters={"a": [1, 2]},
    )
    data = execution_json(execution)
    assert data == {
        "final": True,
        "id": "e1",
        "status": "COMPLETED",
        "parameters": {"a": [1, 2]},
        "expires_at": "2030-01-02T03:04:05+00:00",
        "link": "https://app/w/e1?...",
    }
    assert "very-secret" not in json.dumps(data)
    assert type(data["status"]) is str


def test_failure_statuses() -> None:
    assert is_failure(WorkflowStatus.FAILED)
    assert is_failure("CANCELLED")
    assert not is_failure(WorkflowStatus.COMPLETED)
    assert not is_failure("AWAITING")
    assert not is_failure("SOMETHING_NEW")


def test_error_json_carries_the_fingerprint() -> None:
    error = NotFoundError("GET /x failed", status=404, method="GET", url="u", fingerprint="fp-1")
    assert error_json(error) == {
        "type": "NotFoundError",
        "message": "GET /x failed (fingerprint fp-1)",
        "status": 404,
        "fingerprint": "fp-1",
    }
    assert error_json(TransportError("down", request_sent=False))["request_sent"] is False


def test_error_is_one_line_even_for_a_multi_line_message() -> None:
    err = io.StringIO()
    Output(as_json=False, stdout=io.StringIO(), stderr=err).error(ValueError("a\nb\n"))
    assert err.getvalue() == "error: a b\n"


def test_api_error_without_fingerprint_says_so() -> None:
    err = io.StringIO()
    error = NotFoundError("GET /x failed", status=404, method="GET", url="u")
    Output(as_json=False, stdout=io.StringIO(), stderr=err).error(error)
    assert err.getvalue() == "error: GET /x failed (no fingerprint in the answer)\n"


def test_say_goes_to_stderr_under_json() -> None:
    out, err = io.StringIO(), io.StringIO()
    output = Output(as_json=True, stdout=out, stderr=err)
    output.say("working")
    output.result({"a": 1}, "ignored")
    assert err.getvalue() == "working\n"
    assert out.getvalue() == '{"a":1}\n'
