"""`tl.with_options(...)`: views sharing the pool, token and webhooks, overriding what they name."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from transactionlink_async import (
    ApiKey,
    ClientClosedError,
    LaunchRequest,
    OrganizationToken,
    ResultDownloadError,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransactionLink,
    TransportError,
    WorkflowStatus,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


def client(fake: FakeTransactionLink, **options: object) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        **options,  # type: ignore[arg-type]
    )


async def test_a_view_overrides_the_retry_policy_and_the_parent_keeps_its_own(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    async with client(fake, retry=RetryPolicy(backoff_base=0.01)) as tl:
        impatient = tl.with_options(retry=RetryPolicy.no_retries())
        fake.inject("GET", "/workflows/*", status=503, times=2)
        with pytest.raises(ServerError):
            await impatient.workflows.get(execution_id)
        assert fake.count("GET", "/workflows/*") == 1
        assert (await tl.workflows.get(execution_id)).id == execution_id
        assert fake.count("GET", "/workflows/*") == 3  # one more 503, then the answer
        assert impatient.retry_policy.max_attempts == 1
        assert tl.retry_policy.max_attempts == 4


async def test_a_view_overrides_the_timeouts(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    async with client(fake, retry=RetryPolicy.no_retries()) as tl:
        hasty = tl.with_options(timeouts=Timeouts(total=0.2))
        fake.inject("GET", "/workflows/*", delay=0.6, times=2)
        started = time.monotonic()
        with pytest.raises(TransportError, match="timed out"):
            await hasty.workflows.get(execution_id)
        assert time.monotonic() - started < 0.55
        # The parent's limits are its own: the same slow answer arrives.
        assert (await tl.workflows.get(execution_id)).id == execution_id


async def test_views_share_the_token(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    credentials = ApiKey(fake.api_key, fake.api_secret)
    async with TransactionLink(credentials, base_url=fake.base_url) as tl:
        await tl.workflows.get(execution_id)
        view = tl.with_options(retry=RetryPolicy.no_retries())
        await view.with_options(timeouts=Timeouts(read=5.0)).workflows.get(execution_id)
        await view.workflows.get(execution_id)
    assert fake.count("POST", "/auth/authorize") == 1


async def test_views_share_the_connection_pool(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    fake.inject("GET", "/workflows/*", delay=0.05, times=None)
    async with client(fake, max_connections=1) as tl:
        views = [tl, tl.with_options(retry=RetryPolicy.no_retries()), tl.with_options()]
        async with anyio.create_task_group() as tg:
            for view in views * 2:
                tg.start_soon(view.workflows.get, execution_id)
    assert fake.count("GET", "/workflows/*") == 6
    assert fake.max_in_flight("GET", "/workflows/*") == 1


async def test_every_resource_method_works_through_a_view(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING", "COMPLETED"), seconds_per_status=0.05)
    large = fake.create_execution()
    fake.set_large_result(large, size=100_000)
    async with client(fake) as tl:
        view = tl.with_options(retry=RetryPolicy(max_attempts=2), timeouts=Timeouts(read=10.0))
        case = await view.cases.create(first_name="Ada")
        params = await view.parameters.create({"amount": 1})
        run = await view.workflows.run(
            workflow_definition_id="kyc", case_id=case.case_id, parameters_id=params.id
        )
        started = await view.workflows.initialise(workflow_definition_id="kyc", locale="en")
        assert (await view.workflows.get(started.id)).id == started.id
        done = await view.workflows.wait_for_completion(started.id, timeout=10)
        assert done.status is WorkflowStatus.COMPLETED
        finished = [e.id async for e in view.workflows.wait_many([run.id], timeout=10)]
        assert finished == [run.id]
        outcomes = [
            o
            async for o in view.workflows.launch_many(
                [LaunchRequest(workflow_definition_id="kyc", locale="en")], concurrency=1
            )
        ]
        assert outcomes[0].error is None
        await view.workflows.cancel(outcomes[0].execution.id)  # type: ignore[union-attr]
        assert (await view.workflows.get_result(large))["records"]
        async with view.workflows.stream_result(large) as stream:
            assert sum([len(chunk) async for chunk in stream]) == 100_000
        saved = await view.workflows.download_result(large, tmp_path / "r.json")
        assert saved.size == 100_000
        assert saved.redirected
    # Everything went through the one pool, closed with the parent.
    assert view.closed


async def test_downloads_through_a_view_use_its_timeouts(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=500_000)
    async with client(fake) as tl:  # the parent waits 30 s for a silent storage
        hasty = tl.with_options(timeouts=Timeouts(read=0.2))
        fake.s3.inject(stall_after=1000, times=None)
        started = time.monotonic()
        with pytest.raises(ResultDownloadError):
            await hasty.workflows.download_result(execution_id, tmp_path / "r.json", max_attempts=2)
        assert time.monotonic() - started < 5
        assert not (tmp_path / "r.json").exists()


async def test_closing_a_view_leaves_the_parent_open(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    async with client(fake) as tl:
        async with tl.with_options(retry=RetryPolicy.no_retries()) as view:
            await view.workflows.get(execution_id)
        assert view.closed
        assert not tl.closed
        with pytest.raises(ClientClosedError):
            await view.workflows.get(execution_id)
        with pytest.raises(ClientClosedError):
            view.with_options()
        assert (await tl.workflows.get(execution_id)).id == execution_id
        sibling = tl.with_options()
        assert (await sibling.workflows.get(execution_id)).id == execution_id


async def test_closing_the_parent_closes_its_views(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = fake.create_execution()
    tl = client(fake)
    view = tl.with_options(retry=RetryPolicy.no_retries())
    grandchild = view.with_options(timeouts=Timeouts(read=1.0))
    await grandchild.workflows.get(execution_id)
    await tl.aclose()
    assert view.closed
    assert grandchild.closed
    for closed in (view, grandchild):
        with pytest.raises(ClientClosedError):
            await closed.workflows.get(execution_id)
        with pytest.raises(ClientClosedError):
            await closed.workflows.download_result(execution_id, tmp_path / "r.json")
    assert "closed" in repr(view)


async def test_views_share_the_webhooks_and_the_event_hooks(fake: FakeTransactionLink) -> None:
    async with client(fake) as tl:
        view = tl.with_options(retry=RetryPolicy.no_retries())
        assert view.webhooks is tl.webhooks
        assert view.events is tl.events


def test_with_options_checks_its_arguments() -> None:
    tl = TransactionLink(OrganizationToken("tot_x"))
    with pytest.raises(TypeError, match="retry must be a RetryPolicy"):
        tl.with_options(retry=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeouts must be a Timeouts"):
        tl.with_options(timeouts=5.0)  # type: ignore[arg-type]
