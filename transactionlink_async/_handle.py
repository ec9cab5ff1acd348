"""ClientHandle: the one small, typed object through which features use their client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

import anyio
import attrs

from ._batches.wake import WakeRegistry
from ._deadline import task_cancelling, task_uncancel, uncancel_supported
from ._download.s3_session import S3Session
from ._observe.hub import Observation
from ._request import ApiRequest, parse_json
from ._retry import RetryPolicy
from ._session import SessionSettings
from ._transport import RawResponse
from .coordination import RateBudget, WakeNews
from .errors import ClientClosedError

__all__ = ["ClientHandle", "Closer", "InFlight", "Lifecycle", "Sender"]

#: Something to close with the client (another session, a background task...).
Closer = Callable[[], Awaitable[None]]

#: How long closing waits for the calls it ended to unwind (their own cleanup, e.g. a
#: download removing its temporary file) before it closes the connections under them.
CALLS_UNWIND_WITHIN = 5.0


class Sender(Protocol):
    """The one door for API requests: credentials, the 401 rule, retries, error answers."""

    async def __call__(self, request: ApiRequest) -> RawResponse: ...


class Lifecycle:
    """Whether the client is open, the calls in flight, and what must close with it.

    A view's lifecycle has its parent's as `parent`: the view is closed when either is,
    and its calls and closers belong to the parent, which owns the connections (closing
    the parent ends them; closing the view only refuses new calls).
    """

    def __init__(self, parent: Lifecycle | None = None) -> None:
        self._closed = False
        self._closers: list[Closer] = []
        self._closing: list[Callable[[], None]] = []
        self._parent = parent
        # Where calls are registered: the lifecycle of the client that owns the connections.
        self._root: Lifecycle = self if parent is None else parent._root
        # Every call in flight: closing cancels them, as aiohttp never wakes a read
        # already in a body.
        self._calls: set[InFlight] = set()
        self._unwinding: set[InFlight] = set()
        self._unwound: anyio.Event | None = None
        self._own_calls: list[InFlight] = []

    @property
    def closed(self) -> bool:
        return self._closed or (self._parent is not None and self._parent.closed)

    def check_open(self) -> None:
        if self._closed or (self._parent is not None and self._parent.closed):
            raise ClientClosedError("this TransactionLink client is closed; create a new one")

    def on_close(self, closer: Closer) -> None:
        """Close `closer` with the client; refused once the client is closed."""
        self.check_open()
        if self._parent is not None:
            self._parent.on_close(closer)
        else:
            self._closers.append(closer)

    def on_closing(self, hook: Callable[[], None]) -> None:
        """Call `hook()` the moment the client starts closing, before it waits for the
        calls in flight to unwind (e.g. failing sleeps that no call of theirs would end);
        refused once the client is closed."""
        self.check_open()
        if self._parent is not None:
            self._parent.on_closing(hook)
        else:
            self._closing.append(hook)

    def in_flight(self) -> InFlight:
        """`with lifecycle.in_flight():` around a call that closing must end at once.

        Closing the client cancels the block, which then raises ClientClosedError; any
        other cancellation goes on as it is.
        """
        return InFlight(self)

    def begin_call(self, call: InFlight) -> None:
        """Register a call in flight (ClientClosedError once closed); see `in_flight`."""
        self.check_open()
        self._root._calls.add(call)

    def end_call(self, call: InFlight) -> None:
        root = self._root
        root._calls.discard(call)
        if root._unwinding and call in root._unwinding:
            root._unwinding.discard(call)
            if not root._unwinding and root._unwound is not None:
                root._unwound.set()

    async def close(self) -> bool:
        """Mark closed, run the closing hooks, end the calls in flight, run the closers
        (newest first).

        False when it was closed already.
        """
        if self._closed:
            return False
        self._closed = True
        hooks, self._closing = self._closing, []
        for hook in hooks:
            hook()
        await self._end_calls()
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            await closer()
        return True

    def end_own_calls(self) -> None:
        """The close is over: end the calls of the task that closed (a callback of theirs).

        A cancellation sent to that task during the close would cut the close short.
        """
        own, self._own_calls = self._own_calls, []
        for call in own:
            call.cancel_soon()

    async def _end_calls(self) -> None:
        current = _current_task()
        for call in self._calls:
            call.cancel(current)
        # A call of the closing task itself (a callback closing the client) cannot be
        # waited for here: it ends once the close is over (see `end_own_calls`).
        self._own_calls = [call for call in self._calls if call.task is current]
        # (A block entered outside any task cannot be cancelled, nor waited for.)
        self._unwinding = {
            call for call in self._calls if call.task is not current and call.task is not None
        }
        if not self._unwinding:
            return
        self._unwound = anyio.Event()
        with anyio.move_on_after(CALLS_UNWIND_WITHIN):
            if not _REDELIVER:
                await self._unwound.wait()
                return
            while self._unwinding:
                with anyio.move_on_after(_REDELIVER_EVERY):
                    await self._unwound.wait()
                for call in self._unwinding:
                    call.cancel(current)


#: On 3.11, asyncio.wait_for (redis-py's, with socket timeouts) drops a cancellation that
#: lands as its inner call ends; a call still going this long after the close is cancelled
#: again (anyio's scopes on 3.10 re-deliver by themselves; 3.12's wait_for drops none).
#: Not sooner: a cancellation delivered again may cut short cleanup a call shields.
_REDELIVER = sys.version_info[:2] == (3, 11)
_REDELIVER_EVERY = 0.25


class InFlight:
    """One call in flight, registered with the client's lifecycle, which closing cancels."""

    __slots__ = ("_cancelling", "_cancels", "_lifecycle", "_scope", "_soon", "closing", "task")

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle
        self.task: asyncio.Task[Any] | None = None
        #: The client closed while this call was in flight.
        self.closing: bool = False
        self._cancels = 0  # cancellations the close requested (native)
        self._cancelling = 0  # the task's cancellations requested before the call began
        self._scope: anyio.CancelScope | None = None
        self._soon: asyncio.Handle | None = None

    def __enter__(self) -> None:
        self.task = _current_task()
        # Where the close's cancellation can be withdrawn, a call costs a task lookup;
        # before 3.11, each call runs in an anyio cancel scope.
        if uncancel_supported:
            self._lifecycle.begin_call(self)
            if self.task is not None:
                self._cancelling = task_cancelling(self.task)
            return
        scope = anyio.CancelScope()
        scope.__enter__()  # first: a scope that cannot be entered registers nothing
        try:
            self._lifecycle.begin_call(self)
        except BaseException:
            scope.__exit__(None, None, None)
            raise
        self._scope = scope

    def cancel(self, current: asyncio.Task[Any] | None) -> None:
        """Closing: end the call (one of the closing task itself, once the close is over)."""
        self.closing = True
        if self.task is current:
            return  # see `cancel_soon`
        if self._scope is not None:
            self._scope.cancel()
        elif self.task is not None:
            self._cancel_task()

    def cancel_soon(self) -> None:
        """Once the close is over, end a call of the closing task itself."""
        if self._scope is not None:
            self._scope.cancel()  # anyio delivers it at the block's next checkpoint
        elif self.task is not None and self._soon is None:
            # At its next suspension, which is inside the block: if the block ends first,
            # the exit withdraws this, and no cancellation is left to land outside it.
            self._soon = self.task.get_loop().call_soon(self._cancel_task)

    def _cancel_task(self) -> None:
        assert self.task is not None
        self._soon = None
        self._cancels += 1
        self.task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lifecycle.end_call(self)
        if self._scope is not None:
            scope, self._scope = self._scope, None
            scope.__exit__(exc_type, exc, tb)
            # Only the close cancels this scope (and the scope swallowed that cancellation):
            # the caller's own cancellations pass through as they are.
            if scope.cancelled_caught:
                raise _closed_in_flight() from None
            if self.closing and exc_type is not None and issubclass(exc_type, Exception):
                raise _closed_in_flight() from exc  # see below
            return
        if not self.closing:
            return
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        cancels, self._cancels = self._cancels, 0
        ours_alone = True
        if self.task is not None:
            for _ in range(cancels):
                task_uncancel(self.task)
            ours_alone = task_cancelling(self.task) <= self._cancelling
        if exc_type is None:
            return  # it ended before the close could reach it: its outcome stands
        if issubclass(exc_type, asyncio.CancelledError):
            if ours_alone:
                raise _closed_in_flight() from None
            return  # cancelled by someone else too: that cancellation goes on
        if issubclass(exc_type, Exception):
            # What the closed connections raised instead (or the close's cancellation,
            # consumed on the way): kept as the cause.
            raise _closed_in_flight() from exc
        # KeyboardInterrupt, SystemExit and the like go on as they are.


def _closed_in_flight() -> ClientClosedError:
    return ClientClosedError(
        "the TransactionLink client was closed while this call was in flight "
        "(a request already sent may have been carried out)"
    )


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


@attrs.frozen(kw_only=True)
class ClientHandle:
    """What resources, waits, downloads and webhooks get from their client, and nothing more."""

    #: Sends one API request through the client's door (see `TransactionLink.send`).
    send: Sender
    #: The retry policy in force (downloads pace their own resumes by it too).
    retry_policy: RetryPolicy
    #: Connection pool size, User-Agent and time limits, for sessions besides the API's own.
    session_settings: SessionSettings
    #: Lets a webhook end a `wait_for_completion` sleep early.
    wakeups: WakeRegistry
    #: Webhook news between the clients of a coordination backend (other processes too):
    #: announced by the receiver, asked by a wait that starts.
    news: WakeNews
    #: Request pacing shared through the coordination backend: one bucket per kind of
    #: request, and the pauses a 429 asks for, heard by every client.
    rate_budget: RateBudget
    lifecycle: Lifecycle
    #: The connection pool for pre-signed result links (no API credentials on it).
    storage: S3Session
    #: Event hooks and tracing; `observation.current` is None when nobody watches.
    observation: Observation
    #: Requests a second the client paces `method path` at now (None: not paced yet).
    current_rate: Callable[[str, str], float | None]

    async def send_json(self, request: ApiRequest) -> Any:
        """Send, and parse the answer's JSON body (None for an empty body)."""
        response = await self.send(request)
        return parse_json(response.body, request)
