"""The ready receivers under real servers: FastAPI/Starlette on uvicorn, and aiohttp.web."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import pytest
import uvicorn
from aiohttp import web
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Route
from support import FAST_RETRY

from transactionlink_async import OrganizationToken, TransactionLink
from transactionlink_async.testing import FakeTransactionLink
from transactionlink_async.webhooks import aiohttp_handler, receive, starlette_endpoint

pytestmark = pytest.mark.anyio

PATH = "/webhooks/transactionlink"
KEY_PATH = "/auth/webhooks/key/*"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTransactionLink]:
    async with FakeTransactionLink() as server:
        server.webhooks.retry_interval = 0.05
        yield server


def client_for(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    )


def fastapi_app(tl: TransactionLink) -> FastAPI:
    """The documented setup: one client, opened and closed by the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with tl:
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_api_route(PATH, starlette_endpoint(tl), methods=["POST"])
    return app


def starlette_app(tl: TransactionLink) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with tl:
            yield

    route = Route(PATH, starlette_endpoint(tl, max_body=64 * 1024), methods=["POST"])
    return Starlette(routes=[route], lifespan=lifespan)


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (ephemeral port); yield the webhook URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, ws="none")
    server = uvicorn.Server(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(5):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                    await anyio.sleep(0.01)
            try:
                yield f"http://127.0.0.1:{port}{PATH}"
            finally:
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def aiohttp_serving(tl: TransactionLink) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post(PATH, aiohttp_handler(tl, max_body=64 * 1024))
    # lingering_time=0: after a 413 aiohttp would otherwise keep draining the unread
    # body for 10 s, and hold the shutdown at the end of the test that long.
    runner = web.AppRunner(app, access_log=None, lingering_time=0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with tl:
            yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        await runner.cleanup()


Serving = Callable[[TransactionLink], Any]
SERVERS: dict[str, Serving] = {
    "fastapi": lambda tl: uvicorn_serving(fastapi_app(tl)),
    "starlette": lambda tl: uvicorn_serving(starlette_app(tl)),
    "aiohttp": aiohttp_serving,
}


@pytest.fixture(params=sorted(SERVERS))
def serving(request: pytest.FixtureRequest) -> Serving:
    return SERVERS[request.param]


async def test_a_signed_delivery_is_answered_204_and_wakes_the_waiter(
    fake: FakeTransactionLink, serving: Serving
) -> None:
    tl = client_for(fake)
    async with serving(tl) as url:
        with tl._handle.wakeups.listen("w-1") as woken:
            delivery = await fake.webhooks.send(url, {"workflowId": "w-1", "status": "COMPLETED"})
            assert woken.is_set()
        unencoded = await fake.webhooks.send(url, {"workflowId": "w-2"}, variant="b64_false")
    assert [a.status for a in delivery.attempts] == [204]
    assert [a.status for a in unencoded.attempts] == [204]


@pytest.mark.parametrize(
    "variant", ["tampered", "unsigned", "alg_none", "hs256", "unknown_kid", "garbage"]
)
async def test_a_forged_delivery_is_answered_400_and_wakes_nobody(
    fake: FakeTransactionLink, serving: Serving, variant: Any
) -> None:
    tl = client_for(fake)
    async with serving(tl) as url:
        with tl._handle.wakeups.listen("w-1") as woken:
            delivery = await fake.webhooks.send(
                url, {"workflowId": "w-1", "status": "COMPLETED"}, variant=variant, retries=0
            )
            assert not woken.is_set()
    assert [a.status for a in delivery.attempts] == [400]
    assert delivery.attempts[0].answer == b"invalid webhook signature"


async def test_an_oversize_body_is_answered_413_before_any_check(
    fake: FakeTransactionLink, serving: Serving
) -> None:
    tl = client_for(fake)
    async with serving(tl) as url:
        big = {"workflowId": "w-1", "pad": "x" * 2 * 1024 * 1024}
        delivery = await fake.webhooks.send(url, big, retries=0)
        # Streamed without a length: the cap holds while reading too.
        headers, body = fake.webhooks.signed(big)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=chunks(), headers=headers) as response,
        ):
            streamed = response.status
    assert [a.status for a in delivery.attempts] == [413]
    assert streamed == 413
    assert fake.count("GET", KEY_PATH) == 0


async def test_a_key_outage_is_answered_503_and_the_retry_gets_through(
    fake: FakeTransactionLink, serving: Serving
) -> None:
    fake.inject("GET", KEY_PATH, status=500, times=4)  # every attempt of the first fetch
    tl = client_for(fake)
    async with serving(tl) as url:
        delivery = await fake.webhooks.send(url, {"workflowId": "w-1"}, retries=2)
    assert [a.status for a in delivery.attempts] == [503, 204]


async def test_the_fakes_subscription_delivers_completion_events(
    fake: FakeTransactionLink,
) -> None:
    tl = client_for(fake)
    async with uvicorn_serving(fastapi_app(tl)) as url:
        fake.webhooks.subscribe(url)
        execution = await tl.workflows.initialise(workflow_definition_id="kyc", locale="en")
        with tl._handle.wakeups.listen(execution.id) as woken:
            fake.set_status(execution.id, "COMPLETED")
            with anyio.fail_after(2):
                await woken.wait()
        await fake.webhooks.drain()
    [delivery] = fake.webhooks.deliveries
    assert delivery.delivered
    assert delivery.variant == "valid"


async def test_a_hundred_concurrent_deliveries_are_all_answered_quickly(
    fake: FakeTransactionLink,
) -> None:
    tl = client_for(fake)
    async with uvicorn_serving(fastapi_app(tl)) as url:
        ids = [f"w-{n}" for n in range(100)]
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for execution_id in ids:
                    tg.start_soon(
                        fake.webhooks.send, url, {"workflowId": execution_id, "status": "FAILED"}
                    )
    deliveries = fake.webhooks.deliveries
    assert len(deliveries) == 100
    assert all([a.status for a in d.attempts] == [204] for d in deliveries)
    slowest = max(a.finished - a.started for d in deliveries for a in d.attempts)
    # Well inside the sender's timeout (10 s), even on a loaded machine: deliveries queued
    # behind one another, or each behind its own key fetch, would take seconds.
    assert slowest < fake.webhooks.timeout / 4
    assert fake.count("GET", KEY_PATH) == 1


async def test_max_body_must_be_positive(fake: FakeTransactionLink) -> None:
    tl = client_for(fake)
    for make in (starlette_endpoint, aiohttp_handler):
        with pytest.raises(ValueError, match="max_body"):
            make(tl, max_body=0)
    await tl.aclose()


async def test_a_closed_client_answers_503_so_the_sender_retries(
    fake: FakeTransactionLink,
) -> None:
    tl = client_for(fake)
    await tl.aclose()
    headers, body = fake.webhooks.signed({"workflowId": "w-1"})
    assert await receive(tl, headers, body) == (503, "receiver closed; retry later")


async def test_a_closed_client_answers_503_even_with_the_key_cached(
    fake: FakeTransactionLink, serving: Serving
) -> None:
    tl = client_for(fake)
    async with serving(tl) as url:
        warm = await fake.webhooks.send(url, {"workflowId": "w-1"}, retries=0)
        await tl.aclose()  # e.g. the app's shutdown began; the server still answers
        with tl._handle.wakeups.listen("w-2") as woken:
            late = await fake.webhooks.send(url, {"workflowId": "w-2"}, retries=0)
            assert not woken.is_set()
    assert [a.status for a in warm.attempts] == [204]
    assert [a.status for a in late.attempts] == [503]
    assert fake.count("GET", KEY_PATH) == 1


async def test_a_rotated_key_gets_through_a_flood_of_made_up_kids_at_the_first_retry(
    fake: FakeTransactionLink, serving: Serving, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transactionlink_async.webhooks")
    tl = client_for(fake)
    async with serving(tl) as url:
        await fake.webhooks.send(url, {"workflowId": "w-0"})  # the old key, cached
        forged: list[int] = []

        async def flood() -> None:
            while True:
                delivery = await fake.webhooks.send(
                    url, {"workflowId": "w-1"}, variant="unknown_kid", retries=0
                )
                forged.append(delivery.attempts[0].status or 0)
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(flood)
            with anyio.fail_after(5):
                while len(forged) < 20:  # noqa: ASYNC110 - the flood has no event
                    await anyio.sleep(0.01)
            fake.webhooks.rotate_key()
            genuine = await fake.webhooks.send(url, {"workflowId": "w-2"}, retries=3)
            tg.cancel_scope.cancel()
        # Read before the client closes: a forged delivery still in the server then gets
        # a 503 "receiver closed", logged once at WARNING too (closing is not this test's).
        records = [r for r in caplog.records if r.name == "transactionlink_async.webhooks"]
    assert [a.status for a in genuine.attempts] == [503, 204]
    assert set(forged) == {400, 503}
    # One line at its level per kind of refusal; the rest of the flood went to DEBUG.
    assert len([r for r in records if r.levelno == logging.WARNING]) == 1
    assert len([r for r in records if r.levelno == logging.INFO]) == 1
    assert len([r for r in records if r.levelno == logging.DEBUG]) >= len(forged) - 2
