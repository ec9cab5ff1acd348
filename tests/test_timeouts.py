"""Per-attempt time limits (`Timeouts`), enforced by the watchdog or by aiohttp's own timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import anyio
import pytest
import yarl
from aiohttp import web

from transactionlink_async import (
    OrganizationToken,
    PollPolicy,
    RetryPolicy,
    Timeouts,
    TransactionLink,
    TransportError,
    WaitTimeoutError,
)
from transactionlink_async._deadline import Watchdog, task_cancelling, watchdog_supported
from transactionlink_async._session import NoAnswer, SessionSettings
from transactionlink_async._transport import Transport
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

EXECUTION = b'{"id": "e1", "status": "RUNNING"}'

# Both ways of enforcing the limits must behave the same.
NEEDS_311 = pytest.mark.skipif(not watchdog_supported, reason="the watchdog needs 3.11+")
MODES = [
    pytest.param(True, id="watchdog", marks=NEEDS_311),
    pytest.param(False, id="aiohttp-timers"),
]


def pending_cancellations(task: asyncio.Task[object]) -> int:
    return task_cancelling(task) if watchdog_supported else 0


@contextmanager
def took(low: float, high: float) -> Iterator[None]:
    began = time.monotonic()
    yield
    elapsed = time.monotonic() - began
    assert low <= elapsed <= high, f"took {elapsed:.3f}s, expected {low}-{high}s"


def client(base_url: str, token: str, timeouts: Timeouts, watchdog: bool) -> TransactionLink:
    tl = TransactionLink(
        OrganizationToken(token),
        base_url=base_url,
        timeouts=timeouts,
        retry=RetryPolicy.no_retries(),
    )
    # The client picks the watchdog when it can; tests pin each mode explicitly.
    tl._transport = Transport(
        SessionSettings(max_connections=10, timeouts=timeouts, user_agent="test"),
        watchdog=watchdog,
    )
    return tl


@pytest.fixture
async def drip_server() -> AsyncIterator[str]:
    """GET /workflows/N_S_T: an execution's JSON in N chunks S seconds apart, the last
    byte after a stall of T seconds."""

    async def drip(request: web.Request) -> web.StreamResponse:
        chunks_text, every_text, stall_text = request.match_info["id"].split("_")
        chunks, every, stall = int(chunks_text), float(every_text), float(stall_text)
        body = EXECUTION[:-1] + b" " * 64 * chunks + b"}"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[:-1][:16])
        rest = body[16:-1]
        for index in range(chunks):
            await asyncio.sleep(every)
            await response.write(rest[index * 64 : (index + 1) * 64])
        await response.write(rest[chunks * 64 :])
        await asyncio.sleep(stall)
        await response.write(b"}")
        return response

    app = web.Application()
    app.router.add_get("/workflows/{id}", drip)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("watchdog", MODES)
async def test_total_limits_one_attempt(fake: FakeTransactionLink, watchdog: bool) -> None:
    fake.inject("GET", "/workflows/*", delay=5)
    timeouts = Timeouts(connect=5, read=None, total=0.3)
    async with client(fake.base_url, fake.org_token, timeouts, watchdog) as tl:
        with took(0.25, 1.5), pytest.raises(TransportError, match="timed out") as info:
            await tl.workflows.get("e1")
        assert info.value.request_sent
        # The limit's cancellation is withdrawn: the task goes on as if nothing happened.
        await asyncio.sleep(0.01)
        task = asyncio.current_task()
        assert task is not None
        assert pending_cancellations(task) == 0


@pytest.mark.parametrize("watchdog", MODES)
async def test_read_limits_the_wait_for_the_first_byte(
    fake: FakeTransactionLink, watchdog: bool
) -> None:
    fake.inject("GET", "/workflows/*", delay=5)
    timeouts = Timeouts(connect=0.1, read=0.3, total=None)
    async with client(fake.base_url, fake.org_token, timeouts, watchdog) as tl:
        # aiohttp starts the read limit once the request is written; the watchdog allows
        # the connect limit on top: either way, between 0.3 and 0.4 s plus scheduling.
        with took(0.25, 1.5), pytest.raises(TransportError, match="timed out"):
            await tl.workflows.get("e1")


@pytest.mark.parametrize("watchdog", MODES)
async def test_a_slow_but_steady_answer_is_not_idle(drip_server: str, watchdog: bool) -> None:
    timeouts = Timeouts(connect=0.1, read=0.3, total=None)
    async with client(drip_server, "tot_x", timeouts, watchdog) as tl:
        with took(0.9, 3.0):
            # 10 chunks 0.1 s apart: a second in all, never 0.3 s without a byte.
            execution = await tl.workflows.get("10_0.1_0")
    assert execution.id == "e1"


@pytest.mark.parametrize("watchdog", MODES)
async def test_a_stall_in_the_middle_of_an_answer_times_out(
    drip_server: str, watchdog: bool
) -> None:
    timeouts = Timeouts(connect=1, read=0.3, total=None)
    async with client(drip_server, "tot_x", timeouts, watchdog) as tl:
        with took(0.25, 1.0), pytest.raises(TransportError, match="timed out"):
            await tl.workflows.get("2_0.05_5")


@pytest.mark.parametrize("watchdog", MODES)
async def test_total_also_bounds_an_answer_that_keeps_coming(
    drip_server: str, watchdog: bool
) -> None:
    timeouts = Timeouts(connect=1, read=0.3, total=0.5)
    async with client(drip_server, "tot_x", timeouts, watchdog) as tl:
        with took(0.45, 1.5), pytest.raises(TransportError, match="timed out"):
            await tl.workflows.get("20_0.1_0")


@pytest.mark.parametrize("watchdog", MODES)
async def test_a_limit_and_the_wait_deadline_at_the_same_moment(
    fake: FakeTransactionLink, watchdog: bool
) -> None:
    fake.inject("GET", "/workflows/*", delay=5, times=None)
    poll = PollPolicy(initial=0.001, maximum=0.001)
    for offset in (-0.02, -0.005, 0.0, 0.005, 0.02):
        timeouts = Timeouts(connect=5, read=None, total=0.2)
        async with client(fake.base_url, fake.org_token, timeouts, watchdog) as tl:
            with pytest.raises(WaitTimeoutError):
                await tl.workflows.wait_for_completion("e1", timeout=0.2 + offset, poll=poll)
        task = asyncio.current_task()
        assert task is not None
        assert pending_cancellations(task) == 0
        await asyncio.sleep(0)


@pytest.mark.parametrize("watchdog", MODES)
async def test_cancelling_a_watched_call_is_a_cancellation(
    fake: FakeTransactionLink, watchdog: bool
) -> None:
    fake.inject("GET", "/workflows/*", delay=5)
    timeouts = Timeouts(connect=5, read=5, total=5)
    async with client(fake.base_url, fake.org_token, timeouts, watchdog) as tl:
        call = asyncio.ensure_future(tl.workflows.get("e1"))
        await asyncio.sleep(0.1)
        call.cancel()
        with took(0, 0.5), pytest.raises(asyncio.CancelledError):
            await call


@NEEDS_311
async def test_closing_the_client_stops_the_watchdog(fake: FakeTransactionLink) -> None:
    fake.define_workflow("d", statuses=("RUNNING",))
    async with TransactionLink(OrganizationToken(fake.org_token), base_url=fake.base_url) as tl:
        execution = await tl.workflows.initialise(workflow_definition_id="d", locale="en")
        await tl.workflows.get(execution.id)
        watchdog = tl._transport.default_timing.watchdog
        assert watchdog is not None
        assert watchdog._timer is not None
    assert watchdog._timer is None


def test_the_watchdog_is_used_when_it_can_keep_every_limit() -> None:
    assert Timeouts().watched() is watchdog_supported
    assert Timeouts(read=None).watched() is watchdog_supported
    assert Timeouts(connect=None, read=None).watched() is watchdog_supported
    # Without a connect limit, the first byte's wait could not be told apart from the
    # pool wait: aiohttp's timers keep `read` exact.
    assert Timeouts(connect=None, read=5).watched() is False


# -- the watchdog alone ----------------------------------------------------------------


@NEEDS_311
async def test_the_watchdog_turns_its_own_cancellation_into_a_timeout() -> None:
    watchdog = Watchdog(total=0.05, idle=None)
    task = asyncio.current_task()
    assert task is not None
    attempt = watchdog.start()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(5)
    assert watchdog.timed_out(attempt)
    watchdog.finish(attempt)
    assert pending_cancellations(task) == 0
    await asyncio.sleep(0.01)  # nothing left pending
    watchdog.close()


@NEEDS_311
async def test_someone_elses_cancellation_wins_over_the_watchdog() -> None:
    watchdog = Watchdog(total=10, idle=None)
    loop = asyncio.get_running_loop()
    seen: list[bool] = []

    async def body() -> None:
        attempt = watchdog.start()
        assert attempt is not None
        task = asyncio.current_task()
        assert task is not None

        def both() -> None:
            attempt.ends_at = 0.0
            watchdog._fire(loop)
            task.cancel()

        loop.call_later(0.02, both)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append(watchdog.timed_out(attempt))
            raise
        finally:
            watchdog.finish(attempt)

    task = asyncio.ensure_future(body())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [False]
    assert task.cancelled()
    watchdog.close()


@NEEDS_311
async def test_the_watchdog_keeps_one_timer_for_many_attempts() -> None:
    watchdog = Watchdog(total=30, idle=10)
    loop = asyncio.get_running_loop()

    def watchdog_timers() -> list[asyncio.TimerHandle]:
        return [
            h
            for h in loop._scheduled  # type: ignore[attr-defined]
            if not h.cancelled() and getattr(h._callback, "__self__", None) is watchdog
        ]

    attempts = []

    async def one() -> None:
        attempts.append(watchdog.start())
        await asyncio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
        await asyncio.sleep(0.01)
        assert len(watchdog_timers()) == 1
    for attempt in attempts:
        watchdog.finish(attempt)
    watchdog.close()
    assert watchdog_timers() == []  # closing leaves no timer behind


@NEEDS_311
async def test_a_timed_out_transport_attempt_is_no_answer() -> None:
    # The transport reports the watchdog's limit like aiohttp's: NoAnswer, "timed out".
    async with FakeTransactionLink() as fake:
        fake.inject("GET", "/workflows/*", delay=5)
        transport = Transport(
            SessionSettings(max_connections=1, timeouts=Timeouts(total=0.1), user_agent="t"),
            watchdog=True,
        )
        try:
            with pytest.raises(NoAnswer, match="timed out"):
                await transport.request(
                    "GET",
                    yarl.URL(fake.base_url + "/workflows/x"),
                    headers={"Authorization": fake.org_token},
                )
        finally:
            await transport.aclose()
