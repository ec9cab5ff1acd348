"""The fake's scheduled finishes, its cheap change feed for webhooks, and its /_fake/ controls."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from transactionlink_async.testing import FakeTransactionLink
from transactionlink_async.testing._workflows import WorkflowProgress, WorkflowScript

pytestmark = pytest.mark.anyio


class Receiver:
    """A webhook receiver that notes what arrived, and when."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes, float]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read(), time.monotonic()))
        return web.Response(status=204)


async def until(condition: Callable[[], bool], within: float = 3.0) -> None:
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - state with no event to wait on
            await anyio.sleep(0.005)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json()


async def launch(session: aiohttp.ClientSession, fake: FakeTransactionLink, definition: str) -> str:
    status, answer = await post(
        session,
        f"{fake.base_url}/workflows",
        {"workflowDefinitionId": definition, "locale": "en", "parameters": {}},
    )
    assert status == 200
    execution_id: str = answer["id"]
    return execution_id


def test_each_execution_draws_its_own_finish_and_steps_evenly_to_it() -> None:
    script = WorkflowScript(statuses=("RUNNING", "COMPLETED"), finish_between=(10, 20), seed=7)
    runs = [WorkflowProgress(script, "INITIALISED", started_at=100.0) for _ in range(200)]
    finishes = [run.finishes_at for run in runs]
    assert all(f is not None and 110 <= f < 120 for f in finishes)
    assert len(set(finishes)) == 200  # drawn per execution, not per definition
    run = runs[0]
    assert run.finishes_at is not None
    half = (run.finishes_at - 100.0) / 2
    assert run.status(100.0 + half * 0.99) == "INITIALISED"
    assert run.status(100.0 + half * 1.01) == "RUNNING"
    assert run.status(run.finishes_at - 1e-6) == "RUNNING"
    assert run.status(run.finishes_at) == "COMPLETED"
    # The same seed draws the same finishes.
    again = WorkflowScript(statuses=("RUNNING", "COMPLETED"), finish_between=(10, 20), seed=7)
    assert [WorkflowProgress(again, "I", started_at=100.0).finishes_at for _ in range(200)] == (
        finishes
    )
    # Poll-driven executions have no finishing time.
    assert WorkflowProgress(WorkflowScript(), "I", started_at=0.0).finishes_at is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"finish_between": (0, 1)},
        {"finish_between": (2, 1)},
        {"finish_between": (1, 2), "seconds_per_status": 1.0},
    ],
)
def test_bad_finish_windows_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"finish_between|not both"):
        WorkflowScript(**kwargs)


async def test_subscribers_hear_of_each_scheduled_finish_promptly(
    fake: FakeTransactionLink,
) -> None:
    receiver = Receiver()
    # A finish found by looking on the watcher's tick would then be seconds late.
    fake.webhooks.watch_interval = 10.0
    fake.define_workflow("timed", statuses=("RUNNING", "COMPLETED"), finish_between=(0.1, 0.4))
    async with (
        receiving(receiver) as url,
        aiohttp.ClientSession(headers={"Authorization": fake.org_token}) as session,
    ):
        fake.webhooks.subscribe(url)
        ids = [await launch(session, fake, "timed") for _ in range(100)]
        await until(lambda: len(receiver.received) == 100)
        await fake.webhooks.drain()
    late = []
    for _, body, arrived in receiver.received:
        event = json.loads(body)
        assert event["status"] == "COMPLETED"
        when = fake.finishes_at(event["workflowId"])
        assert when is not None
        late.append(arrived - when)
    assert sorted(json.loads(b)["workflowId"] for _, b, _ in receiver.received) == sorted(ids)
    # Announced from the schedule, not found by scanning on a tick: within a few ms when
    # the machine is idle, and far from the tick's seconds when it is loaded.
    assert min(late) >= 0
    assert sorted(late)[len(late) // 2] < 0.5


async def test_many_executions_do_not_make_each_poll_scan_them_all(
    fake: FakeTransactionLink,
) -> None:
    fake.define_workflow("slow", statuses=("RUNNING",), polls_per_status=1)
    receiver = Receiver()
    looked_at_everything = 0
    snapshot = fake._api.snapshot

    def counting_snapshot() -> dict[str, dict[str, Any]]:
        nonlocal looked_at_everything
        looked_at_everything += 1
        return snapshot()

    fake.webhooks._snapshot = counting_snapshot
    async with (
        receiving(receiver) as url,
        aiohttp.ClientSession(headers={"Authorization": fake.org_token}) as session,
    ):
        ids = [await launch(session, fake, "slow") for _ in range(50)]
        fake.webhooks.subscribe(url)
        for execution_id in ids * 4:
            async with session.get(f"{fake.base_url}/workflows/{execution_id}") as response:
                assert response.status == 200
        fake.set_status(ids[0], "COMPLETED")
        await until(lambda: len(receiver.received) == 1)
    assert looked_at_everything == 1  # once, when subscribing


async def test_the_controls_define_subscribe_and_tell_finishes(fake: FakeTransactionLink) -> None:
    receiver, control = Receiver(), Receiver()
    async with (
        receiving(receiver) as url,
        receiving(control) as control_url,
        aiohttp.ClientSession(headers={"Authorization": fake.org_token}) as session,
    ):
        status, _ = await post(
            session,
            f"{fake.base_url}/_fake/workflows/timed",
            {"statuses": ["COMPLETED"], "finish_between": [0.05, 0.1], "seed": 3},
        )
        assert status == 200
        status, _ = await post(session, f"{fake.base_url}/_fake/webhooks/subscribe", {"url": url})
        assert status == 200
        began = time.monotonic()
        execution_id = await launch(session, fake, "timed")
        async with session.get(f"{fake.base_url}/_fake/finishes") as response:
            finishes = (await response.json())["finishes"]
        assert set(finishes) == {execution_id}
        assert began + 0.05 <= finishes[execution_id] <= time.monotonic() + 0.1
        await until(lambda: len(receiver.received) == 1)
        status, _ = await post(session, f"{fake.base_url}/_fake/webhooks/unsubscribe", {"url": url})
        assert status == 200
        # A receiver still subscribed hears of the next finish: by then, the one that
        # unsubscribed would have had its delivery started too.
        status, _ = await post(
            session, f"{fake.base_url}/_fake/webhooks/subscribe", {"url": control_url}
        )
        assert status == 200
        second = await launch(session, fake, "timed")
        await until(lambda: len(control.received) == 1)
        assert json.loads(control.received[0][1])["workflowId"] == second
        assert [d.url for d in fake.webhooks.deliveries].count(url) == 1
        assert len(receiver.received) == 1
        refused: list[Any] = [{"nope": 1}, {"statuses": []}, ["x"]]
        for body in refused:
            status, _ = await post(session, f"{fake.base_url}/_fake/workflows/bad", body)
            assert status == 400
        status, _ = await post(session, f"{fake.base_url}/_fake/webhooks/subscribe", {"url": 3})
        assert status == 400
    # The controls are not part of the API: not journaled, not counted.
    assert fake.count("*", "/_fake/**") == 0
