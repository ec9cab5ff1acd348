"""Any answer body, however broken, gives a TransactionLinkError: no other crash, no hang."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transactionlink_async import (
    ApiKey,
    InvalidResponseError,
    OrganizationToken,
    RetryPolicy,
    TransactionLink,
    TransactionLinkError,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

# Documents that look like the API's but carry the wrong types.
wrong_types = st.fixed_dictionaries(
    {
        "id": json_values,
        "status": json_values,
        "caseId": json_values,
        "expiresAt": json_values,
        "accessToken": json_values,
        "partyDetails": json_values,
        "executionVersion": json_values,
    },
    optional={"parameters": json_values, "fingerprint": json_values},
)

bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    wrong_types.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=4_000, max_value=20_000).map(lambda n: b'{"id": ' + b"9" * n + b"}"),
    st.just(b'{"id": "\xff\xfe", "status": "RUNNING"}'),
    st.just(b"\xef\xbb\xbf{}"),
    st.just(b'{"id": 1e999999, "status": "RUNNING"}'),
)

Call = Callable[[TransactionLink], Awaitable[Any]]

CALLS: dict[str, tuple[str, str, Call]] = {
    "get": ("GET", "/workflows/*", lambda tl: tl.workflows.get("abc")),
    "initialise": (
        "POST",
        "/workflows",
        lambda tl: tl.workflows.initialise(workflow_definition_id="d", locale="en"),
    ),
    "run": (
        "POST",
        "/workflows/run",
        lambda tl: tl.workflows.run(workflow_definition_id="d", case_id="c"),
    ),
    "case": ("POST", "/cases", lambda tl: tl.cases.create(first_name="A")),
    "parameters": ("POST", "/parameters", lambda tl: tl.parameters.create({"a": 1})),
    "result": ("GET", "/workflows/*/result", lambda tl: tl.workflows.get_result("abc")),
}


async def answer_with(fake: FakeTransactionLink, method: str, path: str, body: bytes) -> None:
    fake.clear_faults()
    fake.inject(method, path, status=200, body=body, times=None)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, call=st.sampled_from(sorted(CALLS)))
async def test_any_answer_is_a_result_or_an_sdk_error(
    fake: FakeTransactionLink, body: bytes, call: str
) -> None:
    method, path, invoke = CALLS[call]
    await answer_with(fake, method, path, body)
    async with TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=RetryPolicy.no_retries()
    ) as tl:
        with anyio.fail_after(5):
            message = ""
            try:
                await invoke(tl)
            except TransactionLinkError as exc:
                message = str(exc)  # the message itself must not crash either
    # Bodies may echo secrets; messages never quote the answer's values.
    assert fake.org_token not in message


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
async def test_any_auth_answer_is_an_sdk_error(fake: FakeTransactionLink, body: bytes) -> None:
    await answer_with(fake, "POST", "/auth/authorize", body)
    async with TransactionLink(
        ApiKey(fake.api_key, fake.api_secret),
        base_url=fake.base_url,
        retry=RetryPolicy.no_retries(),
    ) as tl:
        with anyio.fail_after(5), pytest.raises(TransactionLinkError):
            await tl.workflows.get("abc")


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe\xfd", b'{"id": ' + b"1" * 5000 + b"}"],
    ids=["deep", "not-utf8", "huge-int"],
)
async def test_known_killers_are_invalid_responses(fake: FakeTransactionLink, body: bytes) -> None:
    await answer_with(fake, "GET", "/workflows/*", body)
    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
        with pytest.raises(InvalidResponseError):
            await tl.workflows.get("abc")
