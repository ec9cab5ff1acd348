"""The lifecycle's calls in flight: closing ends them, and leaves no cancellation behind."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import pytest

from transactionlink_async._deadline import task_cancelling
from transactionlink_async._handle import Lifecycle
from transactionlink_async.errors import ClientClosedError

pytestmark = pytest.mark.anyio

needs_cancelling = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Task.cancelling() is 3.11+"
)


async def call_until_closed(lifecycle: Lifecycle, started: asyncio.Event) -> None:
    with lifecycle.in_flight():
        started.set()
        await asyncio.sleep(60)


async def call_going_on_after_a_cancel(
    lifecycle: Lifecycle, started: asyncio.Event, then: Callable[[], Awaitable[None]]
) -> None:
    """In flight until cancelled, when it runs `then()` instead of ending (still in flight)."""
    with lifecycle.in_flight():
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await then()


async def begun(call: Callable[[asyncio.Event], Awaitable[None]]) -> asyncio.Task[None]:
    """`call(started)` in a task of its own, once it is in flight."""
    started = asyncio.Event()
    task = asyncio.ensure_future(call(started))
    await started.wait()
    return task


async def test_closing_ends_a_call_with_client_closed_error() -> None:
    lifecycle = Lifecycle()
    task = await begun(partial(call_until_closed, lifecycle))
    with anyio.fail_after(1):
        await lifecycle.close()
    with pytest.raises(ClientClosedError, match="closed while this call was in flight"):
        await task
    assert not task.cancelled()


@needs_cancelling
async def test_the_close_withdraws_its_cancellation() -> None:
    lifecycle = Lifecycle()
    left: list[int] = []

    async def caller(started: asyncio.Event) -> None:
        # Inside the caller's own time limit, which must still work afterwards.
        with anyio.fail_after(30):
            with pytest.raises(ClientClosedError):
                await call_until_closed(lifecycle, started)
            current = asyncio.current_task()
            assert current is not None
            left.append(task_cancelling(current))
            await asyncio.sleep(0)  # no cancellation is left to land here

    task = await begun(caller)
    await lifecycle.close()
    await asyncio.wait_for(task, 1)
    assert left == [0]


async def test_a_caller_cancelling_as_the_client_closes_stays_cancelled() -> None:
    lifecycle = Lifecycle()
    task = await begun(partial(call_until_closed, lifecycle))
    task.cancel()  # the caller's own cancellation, in the same turn as the close's
    with anyio.fail_after(1):
        await lifecycle.close()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_call_that_swallows_the_cancellation_is_cancelled_again() -> None:
    if sys.version_info >= (3, 12):
        pytest.skip("from 3.12 asyncio.wait_for drops no cancellation: none is re-sent")
    lifecycle = Lifecycle()
    swallowed: list[bool] = []

    async def swallow() -> None:
        swallowed.append(True)  # as wait_for does when its inner call just ended
        await asyncio.sleep(60)

    task = await begun(partial(call_going_on_after_a_cancel, lifecycle, then=swallow))
    with anyio.fail_after(1):
        await lifecycle.close()
    with pytest.raises(ClientClosedError):
        await task
    assert swallowed == [True]


async def test_a_call_of_the_closing_task_ends_once_the_close_is_over() -> None:
    lifecycle = Lifecycle()
    closed_in_close: list[bool] = []

    async def closer() -> None:
        await asyncio.sleep(0.01)  # the close suspends: it must not be cut short there
        closed_in_close.append(True)

    async def call_that_closes() -> None:
        with lifecycle.in_flight():
            await lifecycle.close()
            lifecycle.end_own_calls()
            await asyncio.sleep(60)

    lifecycle.on_close(closer)
    with anyio.fail_after(1), pytest.raises(ClientClosedError):
        await call_that_closes()
    assert closed_in_close == [True]


async def test_a_call_of_the_closing_task_that_ends_at_once_keeps_its_outcome() -> None:
    lifecycle = Lifecycle()
    with lifecycle.in_flight():
        await lifecycle.close()
        lifecycle.end_own_calls()
        outcome = "done"  # no suspension before the block ends
    await asyncio.sleep(0.01)  # nothing was left to cancel the task out here
    assert outcome == "done"


async def test_a_call_begun_after_the_close_is_refused() -> None:
    lifecycle = Lifecycle()
    await lifecycle.close()
    with pytest.raises(ClientClosedError, match="is closed"), lifecycle.in_flight():
        pass


async def test_an_interrupt_in_a_closing_call_goes_on_as_it_is() -> None:
    lifecycle = Lifecycle()

    async def interrupted() -> None:
        with lifecycle.in_flight():
            await lifecycle.close()
            lifecycle.end_own_calls()
            raise SystemExit(3)

    with pytest.raises(SystemExit):
        await interrupted()


async def test_an_error_in_a_closing_call_is_kept_as_the_cause() -> None:
    lifecycle = Lifecycle()

    async def fail() -> None:
        raise OSError("the connection went away")

    task = await begun(partial(call_going_on_after_a_cancel, lifecycle, then=fail))
    await lifecycle.close()
    with pytest.raises(ClientClosedError) as caught:
        await task
    assert isinstance(caught.value.__cause__, OSError)


@needs_cancelling  # before, each call is an anyio cancel scope, which needs a task
def test_a_block_outside_any_task_does_not_hold_up_the_close() -> None:
    lifecycle = Lifecycle()
    with lifecycle.in_flight():

        async def close() -> None:
            with anyio.fail_after(1):
                await lifecycle.close()

        asyncio.run(close())
