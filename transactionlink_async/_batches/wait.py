"""Waiting for executions to finish: the poll schedule, one deadline, and webhook wake-ups."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager

import anyio

from .._convert import ConversionError, structure_execution
from .._handle import ClientHandle
from .._request import ApiRequest, parse_json
from .._retry import PollPolicy, parse_retry_after, poll_delay
from .._validate import check_id
from ..errors import (
    APIError,
    InvalidResponseError,
    RateLimitError,
    TransportError,
    WaitTimeoutError,
)
from ..models import WorkflowExecution
from .base import BatchIterator, Signal, TaskSet

__all__ = [
    "WaitBatch",
    "check_poll_policy",
    "check_timeout",
    "is_transient",
    "wait_for_completion",
]

logger = logging.getLogger("transactionlink_async")

#: Unknown status values already logged in this process (bounded).
_UNKNOWN_STATUSES_LOGGED: set[str] = set()

_DEFAULT_POLL = PollPolicy()


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


async def wait_for_completion(
    client: ClientHandle,
    execution_id: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (the public contract's name; it is a deadline)
    poll: PollPolicy | None = None,
) -> WorkflowExecution:
    """Poll `GET /workflows/{id}` until the execution is final, and return it."""
    check_id("execution_id", execution_id)
    budget = check_timeout(timeout)
    waiter = _Waiter(client, execution_id, check_poll_policy(poll))
    deadline = math.inf if budget is None else anyio.current_time() + budget
    # One scope over everything, the client's own retry sleeps included: the budget is
    # never overrun, and a sleep ends exactly at the deadline rather than after it.
    with anyio.CancelScope(deadline=deadline), client.lifecycle.in_flight():
        return await waiter.run()
    assert budget is not None  # only the deadline's own cancellation lands here
    raise waiter.timed_out(budget) from waiter.last_error


class _Listener:
    """The waiter's current wake-up event; renewed before each check a wake-up triggers."""

    def __init__(self, client: ClientHandle, execution_id: str) -> None:
        self._client = client
        self._execution_id = execution_id
        self._context: AbstractContextManager[anyio.Event] | None = None
        self.event = self._listen()

    def _listen(self) -> anyio.Event:
        context = self._client.wakeups.listen(self._execution_id)
        event = context.__enter__()
        self._context = context
        return event

    def renew(self) -> None:
        # The new event is registered before the old one leaves: a wake-up arriving while
        # the confirming GET is under way is kept for the next sleep, never lost.
        old = self._context
        self.event = self._listen()
        if old is not None:
            old.__exit__(None, None, None)

    def close(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(None, None, None)


class _Waiter:
    """One execution's wait: what it saw last, and the loop of sleeps and checks."""

    def __init__(self, client: ClientHandle, execution_id: str, policy: PollPolicy) -> None:
        self.client = client
        self.execution_id = execution_id
        self.policy = policy
        self.path = f"/workflows/{execution_id}"
        self.last: WorkflowExecution | None = None
        self.last_error: Exception | None = None
        self._warned_unknown = False

    async def run(self) -> WorkflowExecution:
        listener = _Listener(self.client, self.execution_id)
        try:
            # Asked after listening, so news arriving in between is not lost either: when it
            # came before this wait began, confirm at once, as its wake-up would have asked.
            if await self.client.news.announced(self.execution_id):
                listener.event.set()
            polls = 0
            delay = poll_delay(self.policy, 0)
            while True:
                woken = await _sleep(listener.event, delay)
                if woken:
                    listener.renew()
                retry_after: float | None = None
                try:
                    execution, retry_after = await self._check()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    self.last_error = exc
                    if isinstance(exc, RateLimitError):
                        retry_after = exc.retry_after
                else:
                    self.last_error = None
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
                if self.last_error is not None:
                    logger.info(
                        "checking workflow execution %s failed (%s); next check in %.1fs",
                        self.execution_id,
                        _describe(self.last_error),
                        delay,
                    )
        finally:
            listener.close()

    async def _check(self) -> tuple[WorkflowExecution, float | None]:
        """One status check: the execution, and the pause the server asked for (if any)."""
        request = ApiRequest(method="GET", path=self.path)
        response = await self.client.send(request)
        data = parse_json(response.body, request)
        try:
            execution = structure_execution(data)
        except ConversionError as exc:
            raise InvalidResponseError(
                f"GET {self.path} answered with an unexpected shape: {exc}"
            ) from exc
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=time.time())
        return execution, retry_after

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

    def timed_out(self, budget: float) -> WaitTimeoutError:
        seen = "no status seen yet" if self.last is None else f"last status {self.last.status}"
        if self.last_error is not None:
            seen += f"; the last check failed ({_describe(self.last_error)})"
        return WaitTimeoutError(
            f"workflow execution {self.execution_id} did not finish within {budget:g}s "
            f"({seen}); wait again, or raise timeout",
            last=self.last,
        )


async def _sleep(event: anyio.Event, delay: float) -> bool:
    """Sleep `delay` seconds unless woken first; True when woken."""
    if not event.is_set():
        # A timer on the event loop, no task: thousands of sleeping waiters cost nothing.
        with anyio.move_on_after(delay):
            await event.wait()
    return event.is_set()


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
