"""The wake registry: events per execution, cleaned up when their waiter leaves."""

from __future__ import annotations

import anyio
import pytest

from transactionlink_async._batches.wake import WakeRegistry

pytestmark = pytest.mark.anyio


async def test_wake_sets_every_listener_of_that_id_only() -> None:
    registry = WakeRegistry()
    with (
        registry.listen("a") as first,
        registry.listen("a") as second,
        registry.listen("b") as other,
    ):
        assert registry.wake("a") == 2
        assert first.is_set()
        assert second.is_set()
        assert not other.is_set()
    assert registry.waiting("a") == 0
    assert registry.wake("a") == 0


async def test_a_woken_sleeper_returns_at_once() -> None:
    registry = WakeRegistry()

    async def wake_soon() -> None:
        await anyio.sleep(0.01)
        registry.wake("x")

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wake_soon)
            with registry.listen("x") as event:
                await event.wait()


async def test_wake_all_sets_every_listener_and_the_ids_waited_on_are_known() -> None:
    registry = WakeRegistry()
    with registry.listen("a") as first, registry.listen("b") as second:
        assert sorted(registry.waiting_ids()) == ["a", "b"]
        assert registry.wake_all() == 2
        assert first.is_set()
        assert second.is_set()
    assert registry.waiting_ids() == []
    assert registry.wake_all() == 0


def test_every_waiter_counts_once_however_many_share_an_execution() -> None:
    registry = WakeRegistry()
    first, second, third = anyio.Event(), anyio.Event(), anyio.Event()
    registry.add("a", first)
    registry.add("a", first)  # the same waiter again: still one
    registry.add("a", second)
    registry.add("a", second)
    registry.add("b", third)
    assert registry.waiters == 3
    registry.discard("a", third)  # not a waiter of "a": nothing changes
    registry.discard("c", first)
    assert registry.waiters == 3
    registry.discard("a", first)
    registry.discard("a", first)
    assert registry.waiters == 2
    registry.discard("a", second)
    registry.discard("b", third)
    assert registry.waiters == 0
