"""Waiting for executions to finish: the poll schedule, one deadline, and webhook wake-ups."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import anyio

from .._convert import ConversionError, structure_execution
from .._handle import ClientHandle
from .._request import ApiRequest, parse_json
from .._retry import PollPolicy, parse_retry_after, poll_delay, safety_delay, webhooks_flowing
from .._transport import RawResponse
from .._validate import check_id
from ..errors import (
    APIError,
    ClientClosedError,
    InvalidResponseError,
    RateLimitError,
    TransportError,
    WaitTimeoutError,
)
from ..models import WorkflowExecution
from .base import BatchIterator, Signal, TaskSet
from .schedule import PollScheduler

__all__ = [
    "WaitBatch",
    "Waits",
    "check_poll_policy",
    "check_timeout",
    "is_transient",
]

logger = logging.getLogger("transactionlink_async")

#: Unknown status values already logged in this process (bounded).
_UNKNOWN_STATUSES_LOGGED: set[str] = set()

_DEFAULT_POLL = PollPolicy()

#: The largest share of its sleep a scheduled poll may come early, with others due.
_EARLY_SHARE = 0.1


def check_timeout(timeout: object) -> float | None:
    """A wait's budget in seconds: None (no limit) or a number above zero."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"timeout must be a number of seconds or None, got {type(timeout).__name__}"
        )
    if not timeout > 0:  # also refuses NaN
        raise ValueError(f"timeout must be > 0 seconds (or None for no limit), got {timeout!r}")
    return float(timeout)


def check_poll_policy(poll: object) -> PollPolicy:
    if poll is None:
        return _DEFAULT_POLL
    if not isinstance(poll, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy or None, got {type(poll).__name__}")
    return poll


def is_transient(error: BaseException) -> bool:
    """Whether a failed status check is worth repeating later within the same wait.

    No answer, 408, 429 and 5xx are passing trouble. Any other refusal (401 after the
    token was renewed, 403, 404, 400) and an answer the SDK cannot read would fail the
    same way every time: they end the wait.
    """
    if isinstance(error, InvalidResponseError):
        return False
    if isinstance(error, TransportError):
        return True
    if isinstance(error, APIError):
        return error.status in (408, 429) or error.status >= 500
    return False


class Waits:
    """The waits of one client: one scheduler holds all their sleeps (see PollScheduler)."""

    def __init__(self, client: ClientHandle) -> None:
        self._client = client
        self._scheduler: PollScheduler | None = None

    def _schedule(self) -> PollScheduler:
        if self._scheduler is None:
            # As many checks at once as the pool has connections: more would only queue
            # inside aiohttp, where the wait for a connection counts against `connect`.
            scheduler = PollScheduler(self._client.session_settings.max_connections)
            # Failed the moment closing starts: a sleeping wait has no call in flight for
            # the close to end, and must not sleep while other calls unwind.
            self._client.lifecycle.on_closing(functools.partial(_fail_sleeps, scheduler))
            self._scheduler = scheduler
        return self._scheduler

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> Coroutine[Any, Any, WorkflowExecution]:
        """Poll `GET /workflows/{id}` until the execution is final, and return it.

        The arguments are checked now; the returned coroutine does the waiting (one
        coroutine per wait, so that an idle wait holds as little memory as possible).
        """
        check_id("execution_id", execution_id)
        budget = check_timeout(timeout)
        policy = check_poll_policy(poll)
        self._client.lifecycle.check_open()
        return _Waiter(self._client, self._schedule(), execution_id, policy, budget).run()


def _fail_sleeps(scheduler: PollScheduler) -> None:
    scheduler.close(ClientClosedError("this TransactionLink client is closed; create a new one"))


def _holds_slot(future: asyncio.Future[bool]) -> bool:
    """Whether a sleep's future had granted its check slot (it may be cancelled later)."""
    return (
        future.done() and not future.cancelled() and future.exception() is None and future.result()
    )


class _Waiter:
    """One execution's wait: what it saw last, and the loop of sleeps and checks.

    Registered with the client's wake registry for the whole wait: a wake-up (`set`) makes
    the current sleep due now, or, during a check, the next one.
    """

    __slots__ = (
        "_future",
        "_warned_unknown",
        "_woken",
        "budget",
        "client",
        "deadline",
        "execution_id",
        "last",
        "last_error",
        "policy",
        "scheduler",
    )

    def __init__(
        self,
        client: ClientHandle,
        scheduler: PollScheduler,
        execution_id: str,
        policy: PollPolicy,
        budget: float | None,
    ) -> None:
        self.client = client
        self.scheduler = scheduler
        self.execution_id = execution_id
        self.policy = policy
        self.budget = budget
        self.deadline = math.inf
        self.last: WorkflowExecution | None = None
        self.last_error: Exception | None = None
        self._warned_unknown = False
        self._future: asyncio.Future[bool] | None = None
        self._woken = False

    def set(self) -> None:
        """A wake-up: the current sleep ends now (or the next, when a check is under way)."""
        self._woken = True
        future = self._future
        if future is not None:
            self.scheduler.wake(future)

    async def run(self) -> WorkflowExecution:
        # Closing the client ends the wait at once, wherever it is: a sleep is failed by
        # the scheduler's close and a check by its own call's, so the wait needs no
        # registration of its own while it idles (memory is what 100,000 of them cost).
        loop = asyncio.get_running_loop()
        since = loop.time()
        if self.budget is not None:
            self.deadline = since + self.budget
        registry = self.client.wakeups
        registry.add(self.execution_id, self)
        try:
            # Asked after listening, so news arriving in between is not lost either: when it
            # came before this wait began, confirm at once, as its wake-up would have asked.
            with self.client.lifecycle.in_flight():
                announced = await self.client.news.announced(self.execution_id)
            if announced:
                self._woken = True
            polls = 0
            delay = poll_delay(self.policy, 0)
            stretch = True
            exact = False  # the delay is the server's Retry-After
            while True:
                # The sleep, written out here rather than in a helper coroutine: an idle
                # wait is this one frame and a future in the scheduler, nothing more.
                due = since + delay
                safety: float | None = None
                while True:
                    if self._woken:
                        due = loop.time()
                    elif stretch and safety is None and self._flowing():
                        safety = safety_delay(self.policy, self.client.wakeups.waiters)
                        due = max(due, since + safety)
                    future = self._sleep_until(due, exact=exact)
                    try:
                        holding = await future
                    except asyncio.CancelledError:
                        # Cancelled just after its slot was granted: give the slot back.
                        if _holds_slot(future):
                            self.scheduler.done()
                        raise
                    finally:
                        self._future = None
                    if not holding:  # the deadline came first
                        raise self.timed_out() from self.last_error
                    woken = self._woken
                    if woken or not (stretch and safety is None and self._flowing()):
                        break
                    # Webhooks began to flow during this sleep: the rest of it is the
                    # safety net's.
                    self.scheduler.done()
                self._woken = False
                try:
                    execution, retry_after, error = await self._attempt()
                finally:
                    self.scheduler.done()
                since = loop.time()
                self.last_error = error
                if execution is not None:
                    if execution.is_final:
                        return execution
                    self.last = execution
                    self._note_unknown(execution)
                # A check a wake-up asked for is not a scheduled poll: the schedule goes on
                # at the interval it had reached, neither growing nor starting again from
                # `initial`. Chatty status webhooks thus add one GET each, never a burst.
                if not woken:
                    polls += 1
                delay = poll_delay(self.policy, polls, retry_after=retry_after)
                exact = retry_after is not None and self.policy.honour_retry_after
                # Only a good check earns the safety net's long sleep: a failed one is
                # tried again on the schedule. So is a woken check that found the
                # execution not final yet, in case the API lags behind the delivery.
                stretch = error is None and not woken
                if error is not None:
                    logger.info(
                        "checking workflow execution %s failed (%s); next check in %.1fs",
                        self.execution_id,
                        _describe(error),
                        delay,
                    )
        finally:
            registry.discard(self.execution_id, self)

    def _flowing(self) -> bool:
        return webhooks_flowing(self.policy, self.client.wakeups.last_wake, time.monotonic())

    def _sleep_until(self, when: float, *, exact: bool) -> asyncio.Future[bool]:
        """A sleep in the scheduler until `when` (True: a check slot is held), or until the
        deadline when that comes first (False).

        A scheduled poll may come a little early with others (within its jitter, at most
        a tenth of the sleep); a `Retry-After` (`exact`) is kept to the moment.
        """
        deadline = self.deadline
        if when >= deadline:
            future = self.scheduler.sleep(deadline, slot=False)
        else:
            share = 0.0 if exact else min(_EARLY_SHARE, self.policy.jitter)
            future = self.scheduler.sleep(when, deadline=deadline, early_share=share)
        self._future = future
        return future

    async def _attempt(self) -> tuple[WorkflowExecution | None, float | None, Exception | None]:
        """One status check within the deadline: (execution, Retry-After, transient error).

        Errors that end the wait are raised; WaitTimeoutError when the deadline cut it.
        """
        request = ApiRequest(method="GET", path=f"/workflows/{self.execution_id}")
        response: RawResponse | None = None
        try:
            if self.deadline == math.inf:
                response = await self.client.send(request)
            else:
                # The deadline also cuts the client's own retry sleeps: the budget is never
                # overrun, and a sleep ends exactly at the deadline rather than after it.
                with anyio.CancelScope(deadline=self.deadline):
                    response = await self.client.send(request)
            if response is not None:
                return _read(response, request), _retry_after(response), None
        except Exception as exc:
            if not is_transient(exc):
                raise
            return None, exc.retry_after if isinstance(exc, RateLimitError) else None, exc
        raise self.timed_out() from self.last_error

    def _note_unknown(self, execution: WorkflowExecution) -> None:
        if execution.is_known_status or self._warned_unknown:
            return
        self._warned_unknown = True
        status = str(execution.status)[:80]
        # Once per status value: a thousand waits must not log a thousand warnings.
        if status in _UNKNOWN_STATUSES_LOGGED or len(_UNKNOWN_STATUSES_LOGGED) >= 100:
            return
        _UNKNOWN_STATUSES_LOGGED.add(status)
        logger.warning(
            "workflow execution %s reports status %r, which this SDK does not know; "
            "it counts as not final and the wait goes on",
            self.execution_id,
            status,
        )

    def timed_out(self) -> WaitTimeoutError:
        """The error for a wait whose deadline came."""
        seen = "no status seen yet" if self.last is None else f"last status {self.last.status}"
        if self.last_error is not None:
            seen += f"; the last check failed ({_describe(self.last_error)})"
        return WaitTimeoutError(
            f"workflow execution {self.execution_id} did not finish within {self.budget:g}s "
            f"({seen}); wait again, or raise timeout",
            last=self.last,
        )


def _read(response: RawResponse, request: ApiRequest) -> WorkflowExecution:
    """The execution a status check answered."""
    data = parse_json(response.body, request)
    try:
        return structure_execution(data)
    except ConversionError as exc:
        raise InvalidResponseError(
            f"GET {request.path} answered with an unexpected shape: {exc}"
        ) from exc


def _retry_after(response: RawResponse) -> float | None:
    """The pause the server asked for with its answer, if any."""
    return parse_retry_after(response.headers.get("Retry-After"), now=time.time())


def _describe(error: Exception) -> str:
    if isinstance(error, APIError):
        return f"{type(error).__name__}, HTTP {error.status}"
    return type(error).__name__


class WaitBatch(BatchIterator[WorkflowExecution]):
    """The async iterator `wait_many` returns: executions as they finish, fastest first.

    The first wait that fails (its error, or `WaitTimeoutError`) cancels the others and is
    raised from the loop, after the executions that finished before it. Leaving the loop
    early cancels the remaining waits: at once with `async with` or `aclose()`, and on
    CPython also as soon as a plain `async for` drops the iterator.
    """

    def __init__(
        self,
        execution_ids: Iterable[str],
        wait: Callable[[str], Awaitable[WorkflowExecution]],
        *,
        concurrency: int | None,
    ) -> None:
        if isinstance(execution_ids, str):
            raise TypeError("execution_ids must be an iterable of ids, not one str")
        ids = [check_id("execution_id", value) for value in execution_ids]
        self._waits = _WaitRun(ids, wait, concurrency)
        super().__init__(self._waits)

    @property
    def pending(self) -> int:
        """Waits not finished yet (running or not started)."""
        return self._waits.pending

    async def aclose(self) -> None:
        """Cancel the waits still running, and wait until they are gone."""
        await super().aclose()


class _WaitRun:
    """The state of a `WaitBatch`, kept apart so its tasks never keep the iterator alive."""

    def __init__(
        self,
        ids: list[str],
        wait: Callable[[str], Awaitable[WorkflowExecution]],
        concurrency: int | None,
    ) -> None:
        self._todo = deque(ids)
        self._wait = wait
        self._concurrency = concurrency
        self._signal = Signal()
        self._tasks = TaskSet(on_done=self._signal.set)
        self._done: deque[WorkflowExecution] = deque()
        self._error: Exception | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._todo) + len(self._tasks)

    def _start(self) -> None:
        while self._todo and not self._closed and self._error is None:
            if self._concurrency is not None and len(self._tasks) >= self._concurrency:
                return
            self._tasks.spawn(self._one(self._todo.popleft()))

    async def _one(self, execution_id: str) -> None:
        try:
            execution = await self._wait(execution_id)
        except Exception as exc:
            if self._error is None:
                self._error = exc
                self._tasks.cancel()
        else:
            self._done.append(execution)
            self._start()

    async def next(self) -> WorkflowExecution:
        self._start()
        while True:
            if self._done:
                return self._done.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                self._closed = True
                await self._tasks.join(cancel=True)
                raise error
            if self._closed or not self.pending:
                raise StopAsyncIteration
            await self._signal.wait()

    def abandon(self) -> None:
        self._closed = True
        self._tasks.abandon()

    async def close(self, *, cancel: bool = True) -> None:
        # Waits have nothing to finish on their own: closing always cancels them.
        self._closed = True
        self._todo.clear()
        await self._tasks.join(cancel=True)
