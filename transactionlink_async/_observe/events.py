"""Request and answer events a user can subscribe to, for metrics and logs without patching."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs
import yarl

from .._lograte import RateLimitedLog
from .trace import CallTrace, OperationTrace
from .urls import url_without_query

__all__ = ["Events", "RequestEvent", "ResponseEvent"]

logger = logging.getLogger("transactionlink_async")

E = TypeVar("E")


@attrs.frozen(kw_only=True)
class RequestEvent:
    """An attempt is about to be sent (retries each make one)."""

    #: "GET", "POST"...
    method: str
    #: The URL without its query (a pre-signed link's signature stays out).
    url: str
    #: 1 for the first attempt, 2 for the first retry...
    attempt: int
    #: "api" for the TransactionLink API, "storage" for a pre-signed result link.
    target: str


@attrs.frozen(kw_only=True)
class ResponseEvent:
    """An attempt ended: with an HTTP answer (`status`), or without one (`error`)."""

    method: str
    url: str
    attempt: int
    target: str
    #: The HTTP status, None when no answer came (see `error`).
    status: int | None
    #: The answer's headers (empty when no answer came).
    headers: Mapping[str, str] = attrs.field(repr=False)
    #: Why no answer came ("timed out", "could not connect: ..."), else None.
    error: str | None
    #: Seconds from sending the attempt to its answer (or failure).
    elapsed: float


RequestHook = Callable[[RequestEvent], object]
ResponseHook = Callable[[ResponseEvent], object]


class Events:
    """Subscribe to the client's requests and answers: `tl.events.on_response(fn)`.

    Hooks are plain functions called on the event loop for every attempt, so they must
    be quick (count, log, time); one that raises is logged and does not affect the call.
    Each `on_*` returns a function that unsubscribes. With nobody subscribed, the client
    does no work for events at all.
    """

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._on_request: tuple[RequestHook, ...] = ()
        self._on_response: tuple[ResponseHook, ...] = ()
        self._failures = RateLimitedLog(logger, logging.WARNING)

    def __repr__(self) -> str:
        return f"<Events on_request={len(self._on_request)} on_response={len(self._on_response)}>"

    @property
    def active(self) -> bool:
        """Whether anybody is subscribed."""
        return bool(self._on_request or self._on_response)

    def on_request(self, hook: RequestHook) -> Callable[[], None]:
        """Call `hook(RequestEvent)` before each attempt; returns the unsubscribe function."""
        _check_hook(hook)
        self._on_request = (*self._on_request, hook)
        self._changed()
        return lambda: self._remove_request(hook)

    def on_response(self, hook: ResponseHook) -> Callable[[], None]:
        """Call `hook(ResponseEvent)` after each attempt; returns the unsubscribe function."""
        _check_hook(hook)
        self._on_response = (*self._on_response, hook)
        self._changed()
        return lambda: self._remove_response(hook)

    def _remove_request(self, hook: RequestHook) -> None:
        self._on_request = _without(self._on_request, hook)
        self._changed()

    def _remove_response(self, hook: ResponseHook) -> None:
        self._on_response = _without(self._on_response, hook)
        self._changed()

    # -- the Observer protocol (used by the client's send path) -------------------------

    def call(self, method: str, url: yarl.URL, *, target: str) -> CallTrace:
        return _EventCall(self, method, url_without_query(url), target)

    def operation(self, name: str, execution_id: str) -> OperationTrace | None:
        return None

    def emit_request(self, event: RequestEvent) -> None:
        for hook in self._on_request:
            self._run(hook, event)

    def emit_response(self, event: ResponseEvent) -> None:
        for hook in self._on_response:
            self._run(hook, event)

    def _run(self, hook: Callable[[E], object], event: E) -> None:
        try:
            hook(event)
        except Exception as exc:  # a metrics bug must not fail the user's call
            self._failures.log("an event hook raised %s: %s", type(exc).__name__, exc)


def _check_hook(hook: object) -> None:
    if not callable(hook):
        raise TypeError(f"an event hook must be callable, got {type(hook).__name__}")


def _without(hooks: tuple[E, ...], hook: E) -> tuple[E, ...]:
    # Removes one subscription (the same function may be subscribed twice).
    for index, existing in enumerate(hooks):
        if existing is hook:
            return hooks[:index] + hooks[index + 1 :]
    return hooks


class _EventCall:
    """One call's attempts, turned into events."""

    __slots__ = ("_attempt", "_events", "_method", "_started", "_target", "_url")

    def __init__(self, events: Events, method: str, url: str, target: str) -> None:
        self._events = events
        self._method = method
        self._url = url
        self._target = target
        self._attempt = 0
        self._started = 0.0

    def attempt(self, number: int) -> None:
        self._attempt = number
        self._started = time.perf_counter()
        self._events.emit_request(
            RequestEvent(method=self._method, url=self._url, attempt=number, target=self._target)
        )

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        self._respond(status, headers, None)

    def failed(self, detail: str) -> None:
        self._respond(None, {}, detail)

    def _respond(self, status: int | None, headers: Mapping[str, str], error: str | None) -> None:
        self._events.emit_response(
            ResponseEvent(
                method=self._method,
                url=self._url,
                attempt=self._attempt,
                target=self._target,
                status=status,
                headers=headers,
                error=error,
                elapsed=time.perf_counter() - self._started,
            )
        )

    def retrying(self, delay: float) -> None:
        pass

    def renewed(self) -> None:
        pass

    def end(self, error: BaseException | None) -> None:
        pass
