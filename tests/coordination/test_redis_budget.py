"""RedisRateBudget: one bucket for all backends on Redis's clock, pauses heard by all."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from redis_server import RedisServer

from transactionlink_async.coordination import KnownPauses

from .conftest import Join, eventually

pytestmark = pytest.mark.anyio


async def test_backends_draw_from_one_bucket(join: Join) -> None:
    a, b = join(), join()
    waits = [
        await a.member.budget.take("launch", per_second=10, burst=2),
        await b.member.budget.take("launch", per_second=10, burst=2),
        await a.member.budget.take("launch", per_second=10, burst=2),
        await b.member.budget.take("launch", per_second=10, burst=2),
    ]
    # Two at once (the burst), then the next ones queue a tenth of a second apart.
    assert waits[:2] == [0.0, 0.0]
    assert 0.05 < waits[2] <= 0.1
    assert 0.15 < waits[3] <= 0.2
    assert await b.member.budget.take("read", per_second=10, burst=2) == 0.0


async def test_takes_made_together_share_round_trips(join: Join, raw: Any) -> None:
    one = join()
    await one.member.budget.take("warmup", per_second=1000, burst=1000)
    before = await _script_calls(raw)
    waits = await asyncio.gather(
        *(one.member.budget.take("launch", per_second=100, burst=10) for _ in range(200))
    )
    assert await _script_calls(raw) - before <= 5
    waits.sort()
    assert waits[:10] == [0.0] * 10
    # The rest queue one interval apart, as 200 separate takes would.
    assert waits[-1] == pytest.approx(1.9, abs=0.05)


async def _script_calls(raw: Any) -> int:
    stats = await raw.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


async def test_a_pause_reaches_every_backend_at_once(join: Join) -> None:
    a, b = join(), join()
    await a.ready()
    await b.ready()
    await a.member.budget.pause("launch", 3)

    async def paused() -> bool:
        return await b.member.budget.paused_for("launch") > 0

    await eventually(paused, within=2)
    assert 2.5 < await b.member.budget.paused_for("launch") <= 3
    assert await b.member.budget.paused_for("read") == 0.0


async def test_reading_a_pause_at_once_starts_listening(join: Join) -> None:
    """The client reads pauses with `pause_left` alone: its first use subscribes, as
    `paused_for`'s does, or another process's pauses would never be heard."""
    a, b = join(), join()
    await b.ready()
    budget = a.member.budget
    assert isinstance(budget, KnownPauses)
    assert budget.pause_left("launch") == 0.0
    await eventually(lambda: a.backend.connected, within=5)
    await b.member.budget.pause("launch", 3)
    await eventually(lambda: budget.pause_left("launch") > 2.5, within=2)


async def test_a_pause_is_lengthened_never_shortened(join: Join, raw: Any) -> None:
    one = join()
    await one.member.budget.pause("launch", 5)
    await one.member.budget.pause("launch", 1)
    assert 4000 < await raw.pttl("transactionlink:pause:launch") <= 5000
    await one.member.budget.pause("launch", 8)
    assert await raw.pttl("transactionlink:pause:launch") > 7000


async def test_a_backend_starting_during_a_pause_adopts_it(join: Join) -> None:
    a = join()
    await a.member.budget.pause("launch", 4)
    late = join()
    await late.ready()
    assert 3 < await late.member.budget.paused_for("launch") <= 4


async def test_namespaces_keep_budgets_apart(join: Join) -> None:
    a, b = join(namespace="app-a"), join(namespace="app-b")
    assert await a.member.budget.take("launch", per_second=1, burst=1) == 0.0
    assert await b.member.budget.take("launch", per_second=1, burst=1) == 0.0


async def test_without_redis_the_budget_goes_on_locally_and_shares_again_after(
    join: Join, redis_server: RedisServer, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    one = join(timeout=0.25, max_backoff=0.5)
    assert await one.member.budget.take("launch", per_second=10, burst=1) == 0.0
    redis_server.stop()
    try:
        caplog.set_level(logging.DEBUG, "transactionlink_async")
        started = time.monotonic()
        for _ in range(20):
            await one.member.budget.take("launch", per_second=1000, burst=1000)
            await one.member.budget.pause("launch", 0.001)
        # Refused connections fail fast, and the open breaker spares the network.
        assert time.monotonic() - started < 2
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "unavailable" in warnings[0].getMessage()
    finally:
        redis_server.start()

    async def shared_again() -> bool:
        await one.member.budget.take("after", per_second=10, burst=1)
        return bool(await raw.exists("transactionlink:bucket:after"))

    deadline = time.monotonic() + 5
    while not await shared_again():
        assert time.monotonic() < deadline, "the budget did not use Redis again"
        await asyncio.sleep(0.05)
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_bad_arguments_are_refused_before_redis_is_asked(join: Join) -> None:
    one = join()
    with pytest.raises(ValueError, match="per_second"):
        await one.member.budget.take("launch", per_second=float("nan"), burst=1)
    with pytest.raises(ValueError, match="kind"):
        await one.member.budget.take("a b", per_second=1, burst=1)
    with pytest.raises(ValueError, match="seconds"):
        await one.member.budget.pause("launch", float("inf"))
