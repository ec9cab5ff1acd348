"""Webhook news through Redis: every other backend wakes, late waits find the marker."""

from __future__ import annotations

from typing import Any

import pytest
from redis_server import RedisServer

from .conftest import Join, Target, eventually

pytestmark = pytest.mark.anyio


async def test_news_wakes_the_other_backends_but_not_the_announcer(join: Join) -> None:
    a, b, c = join(), join(), join()
    for one in (a, b, c):
        await one.ready()
    await a.member.news.announce("exec-1", "COMPLETED")
    await eventually(lambda: b.target.woken and c.target.woken, within=2)
    assert b.target.woken == c.target.woken == ["exec-1"]
    assert a.target.woken == []  # it woke its own waits before announcing


async def test_a_wait_starting_after_the_news_finds_the_marker(join: Join) -> None:
    a = join()
    await a.member.news.announce("exec-1", "FAILED")
    late = join()  # not even subscribed: the marker is in Redis
    assert await late.member.news.announced("exec-1")
    assert not await late.member.news.announced("exec-2")


async def test_news_that_ends_nothing_is_not_passed_on(join: Join, raw: Any) -> None:
    a, b = join(), join()
    await a.ready()
    await b.ready()
    await a.member.news.announce("exec-1", "RUNNING")
    await a.member.news.announce("exec-2", "COMPLETED")
    await eventually(lambda: b.target.woken, within=2)
    assert b.target.woken == ["exec-2"]
    assert not await raw.exists("transactionlink:final:exec-1")
    assert 0 < await raw.pttl("transactionlink:final:exec-2") <= 60_000


async def test_clients_sharing_one_backend_wake_each_other_without_redis_echo(
    join: Join,
) -> None:
    one = join()
    other = Target()
    second = one.backend.join(other)
    try:
        await one.ready()
        await one.member.news.announce("exec-1", "COMPLETED")
        assert other.woken == ["exec-1"]
        assert one.target.woken == []
    finally:
        await second.aclose()


async def test_news_from_before_the_first_subscription_wakes_its_waits(join: Join) -> None:
    a = join()
    await a.member.news.announce("exec-1", "COMPLETED")
    waiting = Target(waiting={"exec-1", "exec-2"})
    late = join(waiting)
    await late.ready()
    await eventually(lambda: waiting.woken, within=2)
    assert waiting.woken == ["exec-1"]
    assert waiting.woken_all == 0


async def test_after_redis_comes_back_every_wait_is_checked_once(
    join: Join, redis_server: RedisServer
) -> None:
    waiting = Target(waiting={"exec-1"})
    a, b = join(max_backoff=0.5), join(waiting, max_backoff=0.5)
    await a.ready()
    await b.ready()
    redis_server.stop()
    try:
        await eventually(lambda: not b.backend.connected, within=5)
        # News while Redis is away is lost to the other backends (polling covers it).
        await a.member.news.announce("exec-1", "COMPLETED")
    finally:
        redis_server.start()
    await b.ready(within=10)
    await eventually(lambda: waiting.woken_all == 1, within=2)
    # And news flows again.
    await a.ready(within=10)
    await a.member.news.announce("exec-9", "COMPLETED")
    await eventually(lambda: "exec-9" in waiting.woken, within=2)


async def test_garbage_on_the_channel_is_ignored(join: Join, raw: Any) -> None:
    a, b = join(), join()
    await a.ready()
    await b.ready()
    for junk in (b"", b"not json", b'{"id": "a b", "from": "x"}', b"[1]", b'{"kind": 3}'):
        await raw.publish("transactionlink:finals", junk)
        await raw.publish("transactionlink:pauses", junk)
    await a.member.news.announce("exec-1", "COMPLETED")
    await eventually(lambda: b.target.woken, within=2)
    assert b.target.woken == ["exec-1"]
    assert b.backend.connected
