"""`tl.with_raw_response`: status, headers and the parsed model of one answer."""

from __future__ import annotations

import pytest
from support import fast_client

from transactionlink_async import (
    ApiKey,
    APIResponse,
    NotFoundError,
    RetryPolicy,
    TransactionLink,
    WorkflowExecution,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


async def test_each_call_answers_status_headers_and_model(fake: FakeTransactionLink) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING",))
    async with fast_client(fake) as tl:
        raw = tl.with_raw_response
        case = await raw.cases.create(first_name="Ada")
        assert case.status == 201
        assert case.parsed.case_id
        params = await raw.parameters.create({"a": 1})
        assert params.status == 200
        assert params.parsed.id
        run = await raw.workflows.run(workflow_definition_id="kyc", case_id=case.parsed.case_id)
        assert isinstance(run.parsed, WorkflowExecution)
        started = await raw.workflows.initialise(workflow_definition_id="kyc", locale="en")
        got = await raw.workflows.get(started.parsed.id)
        assert isinstance(got, APIResponse)
        assert got.status == 200
        assert got.headers["content-type"].startswith("application/json")
        assert got.parsed.id == started.parsed.id
        cancelled = await raw.workflows.cancel(started.parsed.id)
        assert cancelled.parsed is None
        assert 200 <= cancelled.status < 300


async def test_the_answer_is_the_one_the_call_returned_after_retries(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    fake.inject("GET", "/workflows/*", status=503, times=1)
    async with fast_client(fake) as tl:
        got = await tl.with_raw_response.workflows.get(execution_id)
    assert got.status == 200
    assert fake.count("GET", "/workflows/*") == 2


async def test_auth_calls_are_not_the_answer(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    credentials = ApiKey(fake.api_key, fake.api_secret)
    async with TransactionLink(credentials, base_url=fake.base_url) as tl:
        got = await tl.with_raw_response.workflows.get(execution_id)
    assert fake.count("POST", "/auth/authorize") == 1
    assert got.parsed.id == execution_id


async def test_errors_are_raised_as_from_the_plain_call(fake: FakeTransactionLink) -> None:
    async with fast_client(fake) as tl:
        with pytest.raises(NotFoundError):
            await tl.with_raw_response.workflows.get("nope")
        # A failed raw call leaves nothing behind for the next plain one.
        execution_id = fake.create_execution()
        assert (await tl.workflows.get(execution_id)).id == execution_id


async def test_views_have_raw_responses_too(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    async with fast_client(fake) as tl:
        view = tl.with_options(retry=RetryPolicy.no_retries())
        fake.inject("GET", "/workflows/*", status=503, times=1)
        with pytest.raises(Exception, match="503"):
            await view.with_raw_response.workflows.get(execution_id)
        assert (await view.with_raw_response.workflows.get(execution_id)).status == 200
    assert repr(got := APIResponse(200, {"Authorization": "x"}, None)).count("Authorization") == 0
    assert got.parsed is None
