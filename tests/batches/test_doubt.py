"""Which failed launches may still have created their execution (and stay in doubt)."""

from __future__ import annotations

import pytest

from transactionlink_async import (
    APIError,
    ClientClosedError,
    InvalidResponseError,
    TransportError,
)
from transactionlink_async._batches.doubt import may_have_launched
from transactionlink_async.errors import error_for_status


def answered(status: int) -> APIError:
    return error_for_status(status=status, method="POST", url="/workflows", body=b"")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 422, 429])
def test_a_refusal_created_nothing(status: int) -> None:
    assert not may_have_launched(answered(status))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_failure_may_have_created_it(status: int) -> None:
    assert may_have_launched(answered(status))


def test_a_request_that_went_out_without_an_answer_may_have_created_it() -> None:
    assert may_have_launched(TransportError("reset", request_sent=True))
    assert may_have_launched(InvalidResponseError("a 200 with no id"))
    assert not may_have_launched(TransportError("refused", request_sent=False))


def test_what_fails_before_sending_created_nothing_and_the_unexpected_may_have() -> None:
    assert not may_have_launched(ValueError("not JSON"))
    assert not may_have_launched(TypeError("bad type"))
    assert not may_have_launched(ClientClosedError("closed"))
    assert may_have_launched(RuntimeError("a bug somewhere"))
