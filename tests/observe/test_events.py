"""`tl.events`: request and answer hooks, for API calls and storage downloads."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support import fast_client

from transactionlink_async import (
    ApiKey,
    OrganizationToken,
    RequestEvent,
    ResponseEvent,
    TransactionLink,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


async def test_each_attempt_gives_a_request_and_a_response_event(
    fake: FakeTransactionLink,
) -> None:
    execution_id = fake.create_execution()
    requests: list[RequestEvent] = []
    responses: list[ResponseEvent] = []
    fake.inject("GET", "/workflows/*", status=503, times=1)
    async with fast_client(fake) as tl:
        tl.events.on_request(requests.append)
        tl.events.on_response(responses.append)
        await tl.workflows.get(execution_id)
    url = f"{fake.base_url}/workflows/{execution_id}"
    assert [(e.method, e.url, e.attempt, e.target) for e in requests] == [
        ("GET", url, 1, "api"),
        ("GET", url, 2, "api"),
    ]
    assert [(e.status, e.attempt, e.error) for e in responses] == [(503, 1, None), (200, 2, None)]
    assert all(e.elapsed >= 0 for e in responses)
    assert responses[1].headers["content-type"].startswith("application/json")


async def test_a_failed_attempt_gives_an_error_event(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    responses: list[ResponseEvent] = []
    fake.inject("GET", "/workflows/*", drop="before_body", times=1)
    async with fast_client(fake) as tl:
        tl.events.on_response(responses.append)
        await tl.workflows.get(execution_id)
    assert responses[0].status is None
    assert responses[0].error
    assert responses[1].status == 200


async def test_storage_requests_are_events_without_the_signature(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=50_000)
    requests: list[RequestEvent] = []
    responses: list[ResponseEvent] = []
    async with fast_client(fake) as tl:
        tl.events.on_request(requests.append)
        tl.events.on_response(responses.append)
        await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    storage = [e for e in requests if e.target == "storage"]
    assert len(storage) == 1
    assert storage[0].url.startswith(fake.s3.base_url)
    assert "?" not in storage[0].url
    assert "Signature" not in storage[0].url
    assert [e.status for e in responses if e.target == "storage"] == [200]


async def test_no_token_or_secret_reaches_a_hook(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    seen: list[str] = []
    credentials = ApiKey(fake.api_key, fake.api_secret)
    async with TransactionLink(credentials, base_url=fake.base_url) as tl:
        tl.events.on_request(lambda e: seen.append(repr(e)))
        tl.events.on_response(lambda e: seen.append(repr(e) + repr(dict(e.headers))))
        await tl.workflows.get(execution_id)
    text = "".join(seen)
    assert "/auth/authorize" in text  # auth calls are events too
    assert fake.api_secret not in text
    assert fake.api_key not in text
    assert "Bearer" not in text


async def test_unsubscribing_and_a_raising_hook(
    fake: FakeTransactionLink, caplog: pytest.LogCaptureFixture
) -> None:
    execution_id = fake.create_execution()
    calls: list[int] = []

    def broken(event: ResponseEvent) -> None:
        raise RuntimeError("metrics are down")

    async with fast_client(fake) as tl:
        unsubscribe = tl.events.on_request(lambda e: calls.append(e.attempt))
        tl.events.on_response(broken)
        with caplog.at_level(logging.WARNING, "transactionlink_async"):
            await tl.workflows.get(execution_id)  # the hook's error does not fail the call
        assert "metrics are down" in caplog.text
        unsubscribe()
        unsubscribe()  # harmless twice
        await tl.workflows.get(execution_id)
    assert calls == [1]


def test_hooks_must_be_callable() -> None:
    tl = TransactionLink(OrganizationToken("tot_x"))
    with pytest.raises(TypeError, match="must be callable"):
        tl.events.on_request("print")  # type: ignore[arg-type]
    assert not tl.events.active
