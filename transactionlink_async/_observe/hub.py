"""The client's observers in one place: None on the send path when nobody watches."""

from __future__ import annotations

from collections.abc import Mapping

import yarl

from .events import Events
from .trace import CallTrace, Observer, OperationTrace

__all__ = ["Observation"]


class Observation:
    """The user's event hooks and the tracer (if any), shared by a client and its views.

    `current` is what the send path asks: None when no hook is subscribed and tracing is
    off, so an unobserved call pays one attribute read.
    """

    def __init__(self, tracer: Observer | None = None) -> None:
        self._tracer = tracer
        self.events: Events = Events(self._update)
        self.current: Observer | None = None
        self._update()

    def _update(self) -> None:
        events: Observer | None = self.events if self.events.active else None
        if events is None or self._tracer is None:
            self.current = events or self._tracer
        else:
            self.current = _Both(self._tracer, events)


class _Both:
    """Two observers as one (the tracer first, so event hooks run inside its span)."""

    def __init__(self, first: Observer, second: Observer) -> None:
        self._first = first
        self._second = second

    def call(self, method: str, url: yarl.URL, *, target: str) -> CallTrace:
        return _BothCalls(
            self._first.call(method, url, target=target),
            self._second.call(method, url, target=target),
        )

    def operation(self, name: str, execution_id: str) -> OperationTrace | None:
        first = self._first.operation(name, execution_id)
        second = self._second.operation(name, execution_id)
        if first is None or second is None:
            return first or second
        return _BothOperations(first, second)


class _BothCalls:
    __slots__ = ("_first", "_second")

    def __init__(self, first: CallTrace, second: CallTrace) -> None:
        self._first = first
        self._second = second

    def attempt(self, number: int) -> None:
        self._first.attempt(number)
        self._second.attempt(number)

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        self._first.answered(status, headers)
        self._second.answered(status, headers)

    def failed(self, detail: str) -> None:
        self._first.failed(detail)
        self._second.failed(detail)

    def retrying(self, delay: float) -> None:
        self._first.retrying(delay)
        self._second.retrying(delay)

    def renewed(self) -> None:
        self._first.renewed()
        self._second.renewed()

    def end(self, error: BaseException | None) -> None:
        # The second ends first: the first (the tracer) attached its span's context first.
        self._second.end(error)
        self._first.end(error)


class _BothOperations:
    __slots__ = ("_first", "_second")

    def __init__(self, first: OperationTrace, second: OperationTrace) -> None:
        self._first = first
        self._second = second

    def note(self, name: str, value: str | int | float | bool) -> None:
        self._first.note(name, value)
        self._second.note(name, value)

    def end(self, error: BaseException | None) -> None:
        self._second.end(error)
        self._first.end(error)
