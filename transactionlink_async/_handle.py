"""ClientHandle: the one small, typed object through which features use their client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from ._batches.wake import WakeRegistry
from ._request import ApiRequest, parse_json
from ._retry import RetryPolicy
from ._session import SessionSettings
from ._transport import RawResponse
from .errors import ClientClosedError

__all__ = ["ClientHandle", "Closer", "Lifecycle", "Sender"]

#: Something to close with the client (another session, a background task...).
Closer = Callable[[], Awaitable[None]]


class Sender(Protocol):
    """The one door for API requests: credentials, the 401 rule, retries, error answers."""

    async def __call__(self, request: ApiRequest) -> RawResponse: ...


class Lifecycle:
    """Whether the client is open, and what must be closed with it (newest first)."""

    def __init__(self) -> None:
        self._closed = False
        self._closers: list[Closer] = []

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this TransactionLink client is closed; create a new one")

    def on_close(self, closer: Closer) -> None:
        """Close `closer` with the client; refused once the client is closed."""
        self.check_open()
        self._closers.append(closer)

    async def close(self) -> bool:
        """Mark closed and run the closers (newest first); False when it was closed already."""
        if self._closed:
            return False
        self._closed = True
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            await closer()
        return True


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
    lifecycle: Lifecycle
    #: Requests a second the client paces a kind of request at (see `_ratelimit.kinds`),
    #: learned from the API's 429s; None until the first.
    current_rate: Callable[[str], float | None] = lambda kind: None

    async def send_json(self, request: ApiRequest) -> Any:
        """Send, and parse the answer's JSON body (None for an empty body)."""
        response = await self.send(request)
        return parse_json(response.body, request)
