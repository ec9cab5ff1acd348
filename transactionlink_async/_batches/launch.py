"""launch_many: many `POST /workflows`, a bounded number in flight, at a rate learned from 429s."""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import Any, cast

from .._validate import check_concurrency
from ..models import LaunchOutcome, LaunchRequest, WorkflowExecution
from .base import Signal, TaskSet

__all__ = ["DEFAULT_LAUNCH_CONCURRENCY", "LaunchBatch"]

DEFAULT_LAUNCH_CONCURRENCY = 10

BuildBody = Callable[[LaunchRequest], Mapping[str, Any]]
Launch = Callable[[Mapping[str, Any]], Awaitable[WorkflowExecution]]
#: Launches a second the client paces launches at now (None: no 429 seen yet).
CurrentRate = Callable[[], float | None]


_NOTHING: Any = object()


def _launch_request(item: object) -> LaunchRequest:
    if not isinstance(item, LaunchRequest):
        raise TypeError(f"launch_many takes LaunchRequest items, got {type(item).__name__}")
    return item


class LaunchBatch:
    """The async iterator `launch_many` returns: one `LaunchOutcome` per request.

    Outcomes come in completion order. New launches start only while the loop asks for
    its next outcome, so leaving the loop stops launching at once, with or without
    `async with`. Requests already in flight then finish in the background; `async with`
    (or `await batch.aclose()`) waits for them, and cancels them when the block ends
    with an error or a cancellation.
    """

    def __init__(
        self,
        requests: Iterable[LaunchRequest] | AsyncIterable[LaunchRequest],
        *,
        concurrency: int,
        build_body: BuildBody,
        launch: Launch,
        current_rate: CurrentRate = lambda: None,
    ) -> None:
        check_concurrency(concurrency, allow_none=False)
        self._run = _LaunchRun(requests, concurrency, build_body, launch)
        self._current_rate = current_rate
        # Once nobody can read the outcomes, nothing new may be launched or read.
        finalizer = weakref.finalize(self, self._run.abandon)
        finalizer.atexit = False

    @property
    def current_limit(self) -> int:
        """How many launches may be in flight: the `concurrency` asked for (a 429 slows the
        batch's rate instead, see `current_rate`)."""
        return self._run.concurrency

    @property
    def current_rate(self) -> float | None:
        """Launches a second the client paces launches at now, learned from the API's
        429s; None until the first (they then go out as fast as `concurrency` allows)."""
        return self._current_rate()

    @property
    def in_flight(self) -> int:
        """Launches sent and not answered yet."""
        return len(self._run.tasks)

    @property
    def launched(self) -> int:
        """Requests sent so far (refused ones not counted)."""
        return self._run.launched

    def __aiter__(self) -> LaunchBatch:
        return self

    async def __anext__(self) -> LaunchOutcome:
        return await self._run.next()

    async def aclose(self) -> None:
        """Launch nothing more, and wait for the launches in flight to finish."""
        await self._run.close(cancel=False)

    async def __aenter__(self) -> LaunchBatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._run.close(cancel=exc_type is not None)


class _LaunchRun:
    """The state of a `LaunchBatch`, kept apart so its tasks never keep the iterator alive."""

    def __init__(
        self,
        requests: Iterable[LaunchRequest] | AsyncIterable[LaunchRequest],
        concurrency: int,
        build_body: BuildBody,
        launch: Launch,
    ) -> None:
        self._iter: Iterator[object] | None = None
        self._aiter: AsyncIterator[object] | None = None
        if isinstance(requests, AsyncIterable):
            self._aiter = aiter(requests)
        elif isinstance(requests, Iterable) and not isinstance(requests, (str, bytes)):
            self._iter = iter(requests)
        else:
            raise TypeError(
                "requests must be an iterable or async iterable of LaunchRequest, "
                f"got {type(requests).__name__}"
            )
        self._build_body = build_body
        self._launch = launch
        # A 429 does not cut this: the client's pause holds every launch while the API
        # asks for one, and its learned pace spaces them after (retries included).
        self.concurrency = concurrency
        # Outcomes waiting for the consumer stay fewer than this: memory stays flat.
        self._buffer = concurrency
        self._signal = Signal()
        self.tasks = TaskSet(on_done=self._signal.set)
        self._readers = TaskSet(on_done=self._signal.set)
        self._ready: deque[LaunchOutcome] = deque()
        self._lookahead: deque[object] = deque()
        self._next_index = 0
        self.launched = 0
        self._exhausted = False
        self._input_error: Exception | None = None
        self._closed = False

    # -- the consumer's side ---------------------------------------------------------------

    async def next(self) -> LaunchOutcome:
        while True:
            # Refill before handing an outcome over: new launches overlap the loop body.
            self._fill()
            if self._ready:
                return self._ready.popleft()
            if self._closed:
                raise StopAsyncIteration
            if self._finished:
                self._closed = True
                error, self._input_error = self._input_error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            await self._signal.wait()

    @property
    def _finished(self) -> bool:
        return self._exhausted and not (self._lookahead or self.tasks or self._readers)

    def _fill(self) -> None:
        """Start launches while the concurrency and the outcome buffer allow."""
        if self._closed:
            return
        while len(self.tasks) < self.concurrency and len(self._ready) < self._buffer:
            item = self._take()
            if item is _NOTHING:
                return
            index = self._next_index
            self._next_index += 1
            request = cast(LaunchRequest, item)
            try:
                body = self._build_body(_launch_request(item))
            except (TypeError, ValueError) as exc:
                # Refused before sending: an outcome like any other, the batch goes on.
                self._ready.append(LaunchOutcome(index=index, request=request, error=exc))
                continue
            self.launched += 1
            self.tasks.spawn(self._launch_one(index, request, body))

    def _take(self) -> object:
        """The next input item, or _NOTHING when none is at hand right now."""
        if self._lookahead:
            return self._lookahead.popleft()
        if self._exhausted:
            return _NOTHING
        if self._iter is not None:
            try:
                return next(self._iter)
            except StopIteration:
                self._exhausted = True
            except Exception as exc:
                self._exhausted = True
                self._input_error = exc
            return _NOTHING
        if not self._readers:
            # An async input may be slow: read it aside so finished launches are not
            # held back behind it. Items read are only launched from `next()`.
            self._readers.spawn(self._read())
        return _NOTHING

    async def _read(self) -> None:
        assert self._aiter is not None
        try:
            while not self._closed and len(self._lookahead) < max(
                1, self.concurrency - len(self.tasks)
            ):
                try:
                    item = await anext(self._aiter)
                except StopAsyncIteration:
                    self._exhausted = True
                    return
                self._lookahead.append(item)
                self._signal.set()
        except Exception as exc:
            self._exhausted = True
            self._input_error = exc

    # -- one launch --------------------------------------------------------------------------

    async def _launch_one(
        self, index: int, request: LaunchRequest, body: Mapping[str, Any]
    ) -> None:
        try:
            execution = await self._launch(body)
        except Exception as exc:
            outcome = LaunchOutcome(index=index, request=request, error=exc)
        else:
            outcome = LaunchOutcome(index=index, request=request, execution=execution)
        # The consumer hears of it from the task set once this task has ended.
        self._ready.append(outcome)

    # -- the end -----------------------------------------------------------------------------

    def abandon(self) -> None:
        self._closed = True
        self._readers.abandon()

    async def close(self, *, cancel: bool) -> None:
        self._closed = True
        await self._readers.join(cancel=True)
        await self.tasks.join(cancel=cancel)
