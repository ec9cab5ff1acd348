"""Closing the client under calls in flight: each ends at once with ClientClosedError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from support import FAST_RETRY

from transactionlink_async import (
    ClientClosedError,
    OrganizationToken,
    PollPolicy,
    Timeouts,
    TransactionLink,
)
from transactionlink_async.coordination import LocalCoordination, Member, WakeTarget
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

#: What "promptly" means: the call ends this soon after the close began.
PROMPTLY = 1.0


class StallingApi:
    """A throwaway API that starts an answer's body and then goes quiet (the fake finishes
    every body it starts); it tells when the client let go of the connection."""

    def __init__(self) -> None:
        self.body_started = asyncio.Event()
        self.hung_up = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b'{"id": "ex-1", ')
        self.body_started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.hung_up.set()  # handler_cancellation: the client closed the connection
            raise
        return response


@pytest.fixture
async def stalling() -> AsyncIterator[tuple[StallingApi, str]]:
    api = StallingApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield api, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def close_under(
    tl: TransactionLink, call: Callable[[], Awaitable[Any]], started: Callable[[], Awaitable[Any]]
) -> BaseException:
    """Run `call`, close `tl` once `started` says the call is in flight; what `call` raised.

    Fails (rather than hangs) when the call does not end within PROMPTLY of the close.
    """
    task = asyncio.ensure_future(call())
    try:
        with anyio.fail_after(5):
            await started()
        assert not task.done()
        with anyio.fail_after(PROMPTLY):
            await tl.aclose()
            # `aclose` waits for the calls it ended; the task is done or finishes now.
            await asyncio.wait({task})
    finally:
        task.cancel()
    exc = task.exception()
    assert exc is not None
    return exc


@pytest.mark.parametrize(
    "timeouts",
    [
        # The transport's shared timer enforces `read`...
        Timeouts(read=4),
        # ...or aiohttp's own timers do (no connect limit).
        Timeouts(connect=None, read=4),
        Timeouts(connect=None, read=None, total=None),
    ],
    ids=["watched", "aiohttp-timers", "no-limits"],
)
async def test_an_api_answer_still_arriving(
    stalling: tuple[StallingApi, str], timeouts: Timeouts
) -> None:
    api, base_url = stalling
    tl = TransactionLink(OrganizationToken("tot_x"), base_url=base_url, timeouts=timeouts)
    exc = await close_under(tl, lambda: tl.workflows.get("ex-1"), api.body_started.wait)
    assert isinstance(exc, ClientClosedError)
    assert "closed while this call was in flight" in str(exc)
    # The connection was let go of, not left to the server to time out.
    with anyio.fail_after(2):
        await api.hung_up.wait()


async def test_a_retry_sleep(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    fake.inject("GET", "/workflows/*", status=503, retry_after=30)
    tl = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)

    async def asked() -> None:
        while not fake.count("GET", "/workflows/*"):  # noqa: ASYNC110 - the fake has no event
            await anyio.sleep(0.01)

    exc = await close_under(tl, lambda: tl.workflows.get(execution_id), asked)
    assert isinstance(exc, ClientClosedError)


async def test_a_wait_between_polls(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution(status="RUNNING")
    tl = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)
    poll = PollPolicy(initial=0.01, maximum=60, multiplier=10_000)

    async def polled_once() -> None:
        while not fake.count("GET", "/workflows/*"):  # noqa: ASYNC110
            await anyio.sleep(0.01)

    exc = await close_under(
        tl, lambda: tl.workflows.wait_for_completion(execution_id, poll=poll), polled_once
    )
    assert isinstance(exc, ClientClosedError)


def stalled_result(fake: FakeTransactionLink) -> str:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=2_000_000)
    fake.s3.inject(stall_after=300_000)
    return execution_id


def s3_stalled(fake: FakeTransactionLink) -> Callable[[], Awaitable[None]]:
    async def stalled() -> None:
        while not any(r.bytes_sent >= 300_000 for r in fake.s3.journal):  # noqa: ASYNC110
            await anyio.sleep(0.01)

    return stalled


async def wait_s3_idle(fake: FakeTransactionLink) -> None:
    with anyio.fail_after(2):
        while fake.s3.in_flight():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_get_result_behind_a_link(fake: FakeTransactionLink) -> None:
    execution_id = stalled_result(fake)
    tl = TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    )
    exc = await close_under(tl, lambda: tl.workflows.get_result(execution_id), s3_stalled(fake))
    assert isinstance(exc, ClientClosedError)
    await wait_s3_idle(fake)
    assert fake.s3.journal[-1].hung_up


async def test_stream_result_mid_chunk(fake: FakeTransactionLink) -> None:
    execution_id = stalled_result(fake)
    tl = TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    )
    chunks: list[bytes] = []

    async def read() -> None:
        async with tl.workflows.stream_result(execution_id) as stream:
            async for chunk in stream:
                chunks.append(chunk)

    stalled = s3_stalled(fake)

    async def mid_chunk() -> None:
        await stalled()
        while not chunks:  # noqa: ASYNC110 - the consumer's list has no event
            await anyio.sleep(0.01)

    exc = await close_under(tl, read, mid_chunk)
    assert isinstance(exc, ClientClosedError)
    assert 0 < sum(map(len, chunks)) <= 300_000
    await wait_s3_idle(fake)
    assert fake.s3.journal[-1].hung_up


async def test_download_result_leaves_no_file(fake: FakeTransactionLink, tmp_path: Path) -> None:
    execution_id = stalled_result(fake)
    tl = TransactionLink(
        OrganizationToken(fake.org_token), base_url=fake.base_url, retry=FAST_RETRY
    )
    destination = tmp_path / "result.json"
    exc = await close_under(
        tl,
        lambda: tl.workflows.download_result(execution_id, destination, chunk_size=64 * 1024),
        s3_stalled(fake),
    )
    assert isinstance(exc, ClientClosedError)
    assert names(tmp_path) == []
    await wait_s3_idle(fake)
    assert fake.s3.journal[-1].hung_up


async def test_a_cancellation_of_the_caller_stays_a_cancellation(
    stalling: tuple[StallingApi, str],
) -> None:
    api, base_url = stalling
    async with TransactionLink(OrganizationToken("tot_x"), base_url=base_url) as tl:
        task = asyncio.ensure_future(tl.workflows.get("ex-1"))
        with anyio.fail_after(5):
            await api.body_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not tl.closed


async def test_closing_from_inside_a_call_does_not_wait_for_itself(
    fake: FakeTransactionLink, tmp_path: Path
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=3_000_000)
    tl = TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url)

    async def close_on_first_progress(done: int, total: int | None) -> None:
        if done:
            await tl.aclose()

    with anyio.fail_after(PROMPTLY * 3), pytest.raises(ClientClosedError):
        await tl.workflows.download_result(
            execution_id, tmp_path / "r.json", on_progress=close_on_first_progress
        )
    assert names(tmp_path) == []


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class _LeavingFails:
    """A coordination member whose leaving fails (a backend gone away)."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self.budget = member.budget
        self.news = member.news
        self.tokens_for = member.tokens_for

    async def aclose(self) -> None:
        await self._member.aclose()
        raise OSError("the coordination backend went away")


class FailingCoordination(LocalCoordination):
    def join(self, wakeups: WakeTarget) -> Member:
        return _LeavingFails(super().join(wakeups))


async def test_a_failing_closer_still_closes_the_connections() -> None:
    """A keep-alive connection left in the pool is closed even when a closer raises."""
    hung_up = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b'{"id": "ex-1", "status": "RUNNING"}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        while True:  # until the client hangs up (IncompleteReadError)
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head.encode() + b"\r\n\r\n" + body)
            await writer.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            hung_up.set()
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tl = TransactionLink(
            OrganizationToken("tot_x"),
            base_url=f"http://127.0.0.1:{port}",
            coordination=FailingCoordination(),
        )
        await tl.workflows.get("ex-1")  # its connection stays in the pool
        assert not hung_up.is_set()
        with pytest.raises(OSError, match="went away"):
            await tl.aclose()
        with anyio.fail_after(2):
            await hung_up.wait()
        with pytest.raises(ClientClosedError):
            await tl.workflows.get("ex-1")
    finally:
        server.close()
        await server.wait_closed()
