"""Error answers map to the right class, with the fingerprint, whatever the body looks like."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactionlink_async.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransactionLinkError,
    WaitTimeoutError,
    error_for_status,
)

BODY = json.dumps(
    {"fingerprint": "fp-123", "errors": [{"code": "INVALID", "message": "locale missing"}]}
).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (418, APIError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[APIError]) -> None:
    error = error_for_status(status=status, method="GET", url="https://x/workflows/1", body=BODY)
    assert type(error) is cls
    assert error.status == status
    assert error.fingerprint == "fp-123"
    assert error.errors[0].code == "INVALID"
    assert error.errors[0].message == "locale missing"
    assert error.method == "GET"
    assert error.url == "https://x/workflows/1"
    assert "fp-123" in str(error)
    assert "locale missing" in str(error)


@pytest.mark.parametrize("body", [b"", b"<html>bad gateway</html>", b"[1,2]", b'{"errors": "x"}'])
def test_bodies_that_are_not_error_responses_still_map(body: bytes) -> None:
    error = error_for_status(status=502, method="POST", url="https://x/workflows", body=body)
    assert isinstance(error, ServerError)
    assert error.fingerprint is None
    assert error.errors == ()
    assert "HTTP 502" in str(error)


def test_rate_limit_carries_retry_after() -> None:
    error = error_for_status(status=429, method="GET", url="u", body=b"", retry_after=3600.0)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3600.0


def test_permission_error_says_which_permission() -> None:
    error = error_for_status(status=403, method="GET", url="u", body=BODY)
    assert "can_run" in str(error)


def test_wait_timeout_is_a_timeout() -> None:
    error = WaitTimeoutError("late", last=None)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, TransactionLinkError)


@given(st.binary(max_size=300), st.integers(min_value=400, max_value=599))
def test_any_body_gives_an_api_error(body: bytes, status: int) -> None:
    error = error_for_status(status=status, method="GET", url="u", body=body)
    assert isinstance(error, APIError)
    assert error.status == status
    str(error)
