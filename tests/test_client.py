"""The session manager over real sockets: auth, the 401 rule, retries, cancellation, close."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import pytest
from support import FAST_RETRY

from transactionlink_async import (
    ApiKey,
    AuthenticationError,
    ClientClosedError,
    InvalidResponseError,
    NotFoundError,
    OrganizationToken,
    RateLimitError,
    ServerError,
    TransactionLink,
    TransportError,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


def org_client(fake: FakeTransactionLink, **kwargs: object) -> TransactionLink:
    kwargs.setdefault("retry", FAST_RETRY)
    return TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


def key_client(fake: FakeTransactionLink, **kwargs: object) -> TransactionLink:
    kwargs.setdefault("retry", FAST_RETRY)
    return TransactionLink(ApiKey(fake.api_key, fake.api_secret), base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


async def test_organization_token_is_sent_without_bearer(fake: FakeTransactionLink) -> None:
    async with org_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        assert (await tl.workflows.get(execution.id)).id == execution.id
    entry = fake.requests("GET", "/workflows/*")[0]
    assert entry.headers["Authorization"] == fake.org_token
    assert entry.headers["User-Agent"].startswith("transactionlink-async/")


async def test_api_key_authorizes_once_and_sends_bearer(fake: FakeTransactionLink) -> None:
    async with key_client(fake) as tl:
        for _ in range(3):
            await tl.workflows.initialise(workflow_definition_id="def", locale="en")
    assert fake.count("POST", "/auth/authorize") == 1
    assert fake.requests("POST", "/workflows")[0].headers["Authorization"].startswith("Bearer ")


async def test_300_concurrent_calls_on_an_expired_token_refresh_once(
    fake: FakeTransactionLink,
) -> None:
    async with key_client(fake, max_connections=300) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.expire_access_tokens()
        results = []

        async def get() -> None:
            results.append(await tl.workflows.get(execution.id))

        async with anyio.create_task_group() as tg:
            for _ in range(300):
                tg.start_soon(get)
    assert len(results) == 300
    assert fake.count("POST", "/auth/refresh") == 1
    assert fake.count("POST", "/auth/authorize") == 1


async def test_proactive_refresh_before_expiry(fake: FakeTransactionLink) -> None:
    fake.set_access_token_lifetime(2.0)  # renewed at half its life, before any 401
    async with key_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        await anyio.sleep(1.1)
        await tl.workflows.get(execution.id)
    assert fake.count("POST", "/auth/refresh") == 1
    assert all(e.status != 401 for e in fake.journal)


async def test_refused_refresh_authorizes_again(fake: FakeTransactionLink) -> None:
    async with key_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.expire_access_tokens()
        fake.revoke_refresh_tokens()
        assert (await tl.workflows.get(execution.id)).id == execution.id
    assert fake.count("POST", "/auth/refresh") == 1
    assert fake.count("POST", "/auth/authorize") == 2


async def test_401_renews_once_and_replays_once(fake: FakeTransactionLink) -> None:
    async with key_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.inject("GET", "/workflows/*", status=401, times=1)
        await tl.workflows.get(execution.id)
    assert fake.count("POST", "/auth/refresh") == 1
    assert fake.count("GET", "/workflows/*") == 2


async def test_401_after_another_task_renewed_replays_without_refresh(
    fake: FakeTransactionLink,
) -> None:
    async with key_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        # Both calls leave with the same token and both are refused.
        fake.inject("GET", "/workflows/*", status=401, times=2, delay=0.2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(tl.workflows.get, execution.id)
            tg.start_soon(tl.workflows.get, execution.id)
    assert fake.count("POST", "/auth/refresh") == 1
    assert fake.count("GET", "/workflows/*") == 4


async def test_a_persistent_401_raises_authentication_error(fake: FakeTransactionLink) -> None:
    async with key_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.inject("GET", "/workflows/*", status=401, times=None)
        with pytest.raises(AuthenticationError) as info:
            await tl.workflows.get(execution.id)
    assert info.value.fingerprint
    assert fake.count("GET", "/workflows/*") == 2


async def test_wrong_organization_token_is_not_replayed(fake: FakeTransactionLink) -> None:
    async with TransactionLink(OrganizationToken("tot_wrong"), base_url=fake.base_url) as tl:
        with pytest.raises(AuthenticationError):
            await tl.workflows.get("abc")
    assert fake.count("GET", "/workflows/*") == 1


async def test_creating_post_answered_500_is_sent_once(fake: FakeTransactionLink) -> None:
    fake.inject("POST", "/workflows", status=500)
    async with org_client(fake) as tl:
        with pytest.raises(ServerError) as info:
            await tl.workflows.initialise(workflow_definition_id="def", locale="en")
    assert info.value.fingerprint
    assert fake.count("POST", "/workflows") == 1


async def test_creating_post_whose_connection_drops_is_sent_once(fake: FakeTransactionLink) -> None:
    fake.inject("POST", "/workflows", drop="after_body")
    async with org_client(fake) as tl:
        with pytest.raises(TransportError) as info:
            await tl.workflows.initialise(workflow_definition_id="def", locale="en")
    assert info.value.request_sent
    assert "duplicate" in str(info.value)
    assert fake.count("POST", "/workflows") == 1


@pytest.mark.parametrize(
    ("call", "path"),
    [("cases", "/cases"), ("parameters", "/parameters"), ("run", "/workflows/run")],
)
async def test_every_creating_post_is_guarded(
    fake: FakeTransactionLink, call: str, path: str
) -> None:
    async with org_client(fake) as tl:
        case = await tl.cases.create(first_name="Ada")
        fake.inject("POST", path, status=503)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "cases": lambda: tl.cases.create(first_name="Ada"),
            "parameters": lambda: tl.parameters.create({"a": 1}),
            "run": lambda: tl.workflows.run(workflow_definition_id="def", case_id=case.case_id),
        }
        with pytest.raises(ServerError):
            await calls[call]()
    assert fake.count("POST", path) == (2 if call == "cases" else 1)


async def test_creating_post_retried_after_429(fake: FakeTransactionLink) -> None:
    fake.inject("POST", "/workflows", status=429, retry_after="0")
    async with org_client(fake) as tl:
        await tl.workflows.initialise(workflow_definition_id="def", locale="en")
    assert fake.count("POST", "/workflows") == 2
    assert len(fake.executions) == 1


async def test_creating_post_retried_when_the_connection_cannot_open() -> None:
    # A port nobody listens on: the request provably never left.
    tl = TransactionLink(
        OrganizationToken("tot_x"), base_url=f"http://127.0.0.1:{free_port()}", retry=FAST_RETRY
    )
    async with tl:
        with pytest.raises(TransportError) as info:
            await tl.workflows.initialise(workflow_definition_id="def", locale="en")
    assert info.value.request_sent is False
    assert "4 attempts" in str(info.value)


async def test_get_answered_503_503_200_succeeds(fake: FakeTransactionLink) -> None:
    async with org_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.inject("GET", "/workflows/*", status=503, times=2)
        assert (await tl.workflows.get(execution.id)).id == execution.id
    assert fake.count("GET", "/workflows/*") == 3


async def test_get_gives_up_after_max_attempts(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", status=502, times=None)
    async with org_client(fake) as tl:
        with pytest.raises(ServerError):
            await tl.workflows.get("abc")
    assert fake.count("GET", "/workflows/*") == 4


async def test_cancel_is_retried(fake: FakeTransactionLink) -> None:
    async with org_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.inject("POST", "/workflows/*/cancel", status=503)
        await tl.workflows.cancel(execution.id)
    assert fake.count("POST", "/workflows/*/cancel") == 2


async def test_retry_after_2_waits_about_2s(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", status=503, retry_after="2")
    async with org_client(fake) as tl:
        execution_id = (await tl.workflows.initialise(workflow_definition_id="d", locale="en")).id
        started = time.monotonic()
        await tl.workflows.get(execution_id)
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 3.0


async def test_retry_after_3600_raises_at_once(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", status=429, retry_after="3600")
    async with org_client(fake) as tl:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await tl.workflows.get("abc")
        assert time.monotonic() - started < 1.0
    assert info.value.retry_after == 3600.0
    assert fake.count("GET", "/workflows/*") == 1


async def test_cancel_mid_retry_sleep_is_prompt(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", status=503, retry_after="30")
    async with org_client(fake) as tl:
        await assert_cancels_promptly(tl.workflows.get("abc"), after=0.2)
    assert_no_tasks_left()


async def test_cancel_mid_request_is_prompt(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", delay=30)
    async with org_client(fake) as tl:
        await assert_cancels_promptly(tl.workflows.get("abc"), after=0.2)
    assert_no_tasks_left()


async def assert_cancels_promptly(coro: Coroutine[Any, Any, Any], *, after: float) -> None:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(after)
    assert not task.done()
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.1


def assert_no_tasks_left() -> None:
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    # The fake server's own tasks live in the fixture; none of ours may remain.
    assert not [t for t in others if "transactionlink_async/_" in repr(t.get_coro())]


async def test_close_leaves_nothing_behind(fake: FakeTransactionLink) -> None:
    tl = org_client(fake)
    async with tl:
        await tl.workflows.initialise(workflow_definition_id="def", locale="en")
    assert tl.closed
    gc.collect()  # ResourceWarning is an error in this suite: an unclosed session would fail here
    with pytest.raises(ClientClosedError):
        await tl.workflows.get("abc")
    with pytest.raises(ClientClosedError):
        async with tl:
            pass
    await tl.aclose()  # twice is fine


async def test_unused_client_closes_cleanly(fake: FakeTransactionLink) -> None:
    tasks_before = asyncio.all_tasks()
    tl = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)
    async with tl:
        assert not tl.closed
    assert tl.closed
    assert asyncio.all_tasks() == tasks_before  # nothing left running
    gc.collect()  # an unclosed session would raise ResourceWarning (an error in this suite)
    assert fake.journal == []  # and an unused client never called the API


async def test_no_secret_in_logs_or_errors(
    fake: FakeTransactionLink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transactionlink_async")
    fake.inject("GET", "/workflows/*", status=503)
    async with key_client(fake) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="def", locale="en")
        fake.expire_access_tokens()
        await tl.workflows.get(execution.id)
        fake.inject("GET", "/workflows/*", status=404)
        try:
            await tl.workflows.get("missing")
        except Exception as exc:
            caplog.records.append(logging.makeLogRecord({"msg": str(exc) + repr(exc)}))
        text = "\n".join(r.getMessage() for r in caplog.records) + repr(tl)
    assert "retrying" in text
    secrets = [fake.api_secret, fake.api_key, fake.org_token]
    secrets += [
        e.headers.get("Authorization", "") for e in fake.journal if "Authorization" in e.headers
    ]
    for entry in fake.requests("POST", "/auth/refresh"):
        secrets.append(json.loads(entry.body)["refreshToken"])
    assert len(secrets) > 4
    for secret in filter(None, secrets):
        assert secret.removeprefix("Bearer ") not in text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_call_in_its_retry_sleep_at_close_raises_closed(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", status=503, retry_after="0.3")
    tl = org_client(fake)
    outcome: list[BaseException] = []

    async def call() -> None:
        try:
            await tl.workflows.get("abc")
        except Exception as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.sleep(0.1)
        await tl.aclose()
    assert isinstance(outcome[0], ClientClosedError)
    assert fake.count("GET", "/workflows/*") == 1
    gc.collect()  # an unclosed session would raise ResourceWarning (an error here)


async def test_a_call_in_flight_at_close_does_not_reopen(fake: FakeTransactionLink) -> None:
    fake.inject("GET", "/workflows/*", delay=0.3)
    tl = org_client(fake)
    outcome: list[BaseException] = []

    async def call() -> None:
        try:
            await tl.workflows.get("abc")
        except Exception as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.sleep(0.1)
        await tl.aclose()
    assert isinstance(outcome[0], ClientClosedError)
    gc.collect()


async def test_a_failed_authorize_is_shared_by_the_callers_queued_behind_it(
    fake: FakeTransactionLink,
) -> None:
    fake.inject("POST", "/auth/authorize", status=502, times=None)
    async with key_client(fake) as tl:
        errors: list[BaseException] = []

        async def call() -> None:
            try:
                await tl.workflows.get("abc")
            except ServerError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(call)
    assert len(errors) == 50
    # One renewal (with its own retries) for the whole burst, not one per caller.
    assert fake.count("POST", "/auth/authorize") == FAST_RETRY.max_attempts


async def test_a_wrong_secret_is_tried_once_per_burst(fake: FakeTransactionLink) -> None:
    credentials = ApiKey(fake.api_key, "wrong")
    async with (
        TransactionLink(credentials, base_url=fake.base_url) as tl,
        anyio.create_task_group() as tg,
    ):
        for _ in range(20):
            tg.start_soon(expect_auth_error, tl)
    assert fake.count("POST", "/auth/authorize") == 1


async def expect_auth_error(tl: TransactionLink) -> None:
    with pytest.raises(AuthenticationError):
        await tl.workflows.get("abc")


async def test_a_token_expired_on_arrival_does_not_loop() -> None:
    # No expiryDuration, and a JWT whose exp has passed: stale from birth by our clock.
    async with FakeTransactionLink(access_token_lifetime=0, include_expiry_duration=False) as fake:
        async with key_client(fake) as tl:
            with anyio.fail_after(5), pytest.raises(AuthenticationError):
                await tl.workflows.get("abc")
        # Used once, refused, renewed once, refused again: then the error.
        assert fake.count("POST", "/auth/authorize") + fake.count("POST", "/auth/refresh") == 2
        assert fake.count("GET", "/workflows/*") == 2


async def test_an_error_answer_with_a_large_body_is_still_its_error(
    fake: FakeTransactionLink,
) -> None:
    fake.inject("GET", "/workflows/*/result", status=404, body=b"x" * 200_000)
    async with org_client(fake) as tl:
        with pytest.raises(NotFoundError):
            await tl.workflows.get_result("abc", max_bytes=1000)


async def test_an_unreadable_answer_to_a_creating_call_says_it_was_carried_out(
    fake: FakeTransactionLink,
) -> None:
    fake.inject("POST", "/workflows", status=200, body={"id": "exec-1", "status": 5})
    async with org_client(fake) as tl:
        with pytest.raises(InvalidResponseError, match=r"carried out \(id exec-1\).*look it up"):
            await tl.workflows.initialise(workflow_definition_id="d", locale="en")
