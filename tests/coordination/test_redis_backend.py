"""RedisCoordination as a whole: arguments, a slow Redis, closing, and its repr."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from transactionlink_async.coordination import LocalCoordination, RedisCoordination

from .conftest import Join, Target, eventually

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("args", "options", "error"),
    [
        (("http://localhost",), {}, ValueError),
        ((b"redis://localhost",), {}, ValueError),
        (("redis://localhost",), {"namespace": ""}, ValueError),
        (("redis://localhost",), {"namespace": "a b"}, ValueError),
        (("redis://localhost",), {"namespace": 3}, TypeError),
        (("redis://localhost",), {"timeout": 0}, ValueError),
        (("redis://localhost",), {"timeout": float("nan")}, ValueError),
        (("redis://localhost",), {"max_backoff": float("inf")}, ValueError),
        (("redis://localhost",), {"timeout": "1"}, TypeError),
    ],
)
def test_bad_arguments_are_refused_at_once(
    args: tuple[Any, ...], options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RedisCoordination(*args, **options)


def test_the_repr_shows_no_password() -> None:
    backend = RedisCoordination("redis://user:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(backend)
    assert "namespace='transactionlink'" in repr(backend)


async def test_a_slow_redis_costs_each_call_its_timeout_at_most_then_nothing(
    join: Join, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    one = join(timeout=0.2, max_backoff=1.0)
    await one.ready()
    await raw.execute_command("CLIENT", "PAUSE", "1500", "ALL")
    caplog.set_level(logging.WARNING, "transactionlink_async")
    started = time.monotonic()
    first = await one.member.budget.take("launch", per_second=10, burst=1)
    assert first == 0.0  # answered locally
    assert time.monotonic() - started < 0.6
    started = time.monotonic()
    for _ in range(50):
        await one.member.news.announce("exec-1", "COMPLETED")
        assert not await one.member.news.announced("exec-2")
    # The breaker is open: no call waits on Redis any more.
    assert time.monotonic() - started < 0.2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_closing_the_last_member_leaves_no_task_or_connection(
    redis_url: str, raw: Any
) -> None:
    before = {t for t in asyncio.all_tasks()}
    clients_before = len(await raw.client_list())
    backend = RedisCoordination(redis_url, timeout=2.0)
    first, second = backend.join(Target()), backend.join(Target())
    await first.budget.take("launch", per_second=10, burst=1)
    await first.news.announce("exec-1", "COMPLETED")
    await eventually(lambda: backend.connected)
    await first.aclose()
    assert backend.connected  # one client still uses it
    await second.aclose()
    await second.aclose()  # twice is harmless
    assert not backend.connected
    assert {t for t in asyncio.all_tasks()} - before == set()
    assert len(await raw.client_list()) == clients_before
    # A client joining later opens it again.
    third = backend.join(Target())
    assert await third.budget.take("launch", per_second=10, burst=1) >= 0
    await third.aclose()


async def test_closing_under_a_running_take_answers_it_locally(redis_url: str) -> None:
    backend = RedisCoordination(redis_url, timeout=2.0)
    member = backend.join(Target())
    takes = [
        asyncio.ensure_future(member.budget.take("launch", per_second=1000, burst=1000))
        for _ in range(50)
    ]
    await asyncio.sleep(0)
    await member.aclose()
    waits = await asyncio.gather(*takes)
    assert all(w >= 0 for w in waits)


async def test_local_coordination_shares_news_and_budget_between_its_clients() -> None:
    local = LocalCoordination()
    a_target, b_target = Target(), Target()
    a, b = local.join(a_target), local.join(b_target)
    assert a.tokens_for("k", "s") is None  # each client keeps its own token
    await a.news.announce("exec-1", "COMPLETED")
    assert b_target.woken == ["exec-1"]
    assert a_target.woken == []
    assert await b.news.announced("exec-1")
    assert await a.budget.take("launch", per_second=1, burst=1) == 0.0
    assert await b.budget.take("launch", per_second=1, burst=1) == pytest.approx(1.0, abs=0.05)
    await a.aclose()
    await a.news.announce("exec-2", "COMPLETED")
    assert a_target.woken == []
    await b.aclose()


async def test_calls_after_close_stay_local_and_open_nothing(redis_url: str, raw: Any) -> None:
    backend = RedisCoordination(redis_url, timeout=2.0)
    member = backend.join(Target())
    await member.budget.take("launch", per_second=10, burst=1)
    await member.aclose()
    before = {t for t in asyncio.all_tasks()}
    clients = len(await raw.client_list())
    # A straggler (a webhook handled while its client closed) after the close:
    await member.news.announce("exec-1", "COMPLETED")
    assert not await member.news.announced("exec-2")
    assert await member.budget.take("launch", per_second=10, burst=1) >= 0
    assert {t for t in asyncio.all_tasks()} - before == set()
    assert len(await raw.client_list()) == clients
    assert not await raw.exists("transactionlink:final:exec-1")
