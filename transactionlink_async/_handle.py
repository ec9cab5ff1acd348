"""ClientHandle: the one small, typed object through which features use their client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

import anyio
import attrs

from ._batches.wake import WakeRegistry
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
        self._parent = parent
        # Each call in flight runs in its own cancel scope (with the task it runs in):
        # closing cancels them, as aiohttp never wakes a read already in a body.
        self._calls: dict[anyio.CancelScope, asyncio.Task[Any] | None] = {}
        self._unwinding: set[anyio.CancelScope] = set()
        self._unwound: anyio.Event | None = None

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

    def in_flight(self) -> InFlight:
        """`with lifecycle.in_flight():` around a call that closing must end at once.

        Closing the client cancels the block, which then raises ClientClosedError; any
        other cancellation goes on as it is.
        """
        return InFlight(self)

    def begin_call(self, scope: anyio.CancelScope) -> None:
        """Register a call's scope (ClientClosedError once closed); see `in_flight`."""
        self.check_open()
        if self._parent is not None:
            self._parent.begin_call(scope)
            return
        self._calls[scope] = _current_task()

    def end_call(self, scope: anyio.CancelScope) -> None:
        if self._parent is not None:
            self._parent.end_call(scope)
            return
        del self._calls[scope]
        if scope in self._unwinding:
            self._unwinding.discard(scope)
            if not self._unwinding and self._unwound is not None:
                self._unwound.set()

    async def close(self) -> bool:
        """Mark closed, end the calls in flight, run the closers (newest first).

        False when it was closed already.
        """
        if self._closed:
            return False
        self._closed = True
        await self._end_calls()
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            await closer()
        return True

    async def _end_calls(self) -> None:
        current = _current_task()
        for scope in self._calls:
            scope.cancel()
        # A call of the closing task itself (a callback closing the client) cannot be
        # waited for here: it ends once the close returns to it.
        self._unwinding = {s for s, task in self._calls.items() if task is not current}
        if self._unwinding:
            self._unwound = anyio.Event()
            with anyio.move_on_after(CALLS_UNWIND_WITHIN):
                await self._unwound.wait()


class InFlight:
    """One call in flight: its cancel scope, registered with the client's lifecycle."""

    __slots__ = ("_lifecycle", "_scope")

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle
        self._scope = anyio.CancelScope()

    def __enter__(self) -> None:
        self._lifecycle.begin_call(self._scope)
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = self._scope
        self._lifecycle.end_call(scope)
        scope.__exit__(exc_type, exc, tb)
        if scope.cancelled_caught:
            # Only the close cancels this scope (and the scope swallowed that cancellation):
            # the caller's own cancellations pass through as they are.
            raise ClientClosedError(
                "the TransactionLink client was closed while this call was in flight "
                "(a request already sent may have been carried out)"
            ) from None


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
