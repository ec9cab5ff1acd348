"""launch_many: many `POST /workflows`, a bounded and adaptive number of them in flight."""

from __future__ import annotations

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
from typing import TYPE_CHECKING, Any, ClassVar, cast

import attrs

from .._validate import check_concurrency
from ..errors import ClientClosedError
from ..models import LaunchOutcome, LaunchRequest, WorkflowExecution
from .base import BatchIterator, Signal, TaskSet
from .defaults import DEFAULT_LAUNCH_CONCURRENCY

if TYPE_CHECKING:
    from .._handle import Lifecycle

__all__ = ["DEFAULT_LAUNCH_CONCURRENCY", "Attempt", "Indexed", "LaunchBatch", "Settled"]


BuildBody = Callable[[LaunchRequest], Mapping[str, Any]]
Launch = Callable[[Mapping[str, Any]], Awaitable[WorkflowExecution]]
#: What one launch slot does with a request (the default: send it; with a journal: claim,
#: send, record), and the outcome it ends with.
Attempt = Callable[[int, LaunchRequest, Mapping[str, Any]], Awaitable[LaunchOutcome]]
#: Launches a second the client paces `POST /workflows` at now (None: not paced).
CurrentRate = Callable[[], "float | None"]


@attrs.frozen
class Settled:
    """An input item whose outcome is known without sending anything (a journal's record)."""

    outcome: LaunchOutcome


@attrs.frozen
class Indexed:
    """An input item that carries its own position in the caller's input."""

    index: int
    request: LaunchRequest


_NOTHING: Any = object()


def _launch_request(item: object) -> LaunchRequest:
    if not isinstance(item, LaunchRequest):
        raise TypeError(f"launch_many takes LaunchRequest items, got {type(item).__name__}")
    return item


class LaunchBatch(BatchIterator[LaunchOutcome]):
    """The async iterator `launch_many` returns: one `LaunchOutcome` per request.

    Outcomes come in completion order. New launches start only while the loop asks for
    its next outcome, so leaving the loop stops launching at once, with or without
    `async with`. Requests already in flight then finish in the background; `async with`
    (or `await batch.aclose()`) waits for them, and cancels them when the block ends
    with an error or a cancellation.
    """

    CANCEL_ON_CLOSE: ClassVar[bool] = False

    def __init__(
        self,
        requests: Iterable[LaunchRequest]
        | AsyncIterable[LaunchRequest]
        | AsyncIterable[Settled | Indexed],
        *,
        concurrency: int,
        build_body: BuildBody,
        launch: Launch,
        attempt: Attempt | None = None,
        lifecycle: Lifecycle | None = None,
        current_rate: CurrentRate | None = None,
    ) -> None:
        check_concurrency(concurrency, allow_none=False)
        self._launches = _LaunchRun(
            requests,
            concurrency,
            build_body,
            attempt or _plain_attempt(launch),
            lifecycle,
        )
        self._current_rate = current_rate
        super().__init__(self._launches)

    @property
    def current_limit(self) -> int:
        """How many launches may be in flight at once: the batch's `concurrency`.

        A 429 does not lower it: the client's pace spaces the launches instead (see
        `current_rate`), since fewer in flight cannot slow down an API that answers fast.
        """
        return self._launches.concurrency

    @property
    def current_rate(self) -> float | None:
        """Launches a second the client paces this batch at now; None until its first 429
        (or its `RateLimit`, when one is set: then the lower of the two)."""
        return None if self._current_rate is None else self._current_rate()

    @property
    def in_flight(self) -> int:
        """Launches sent and not answered yet."""
        return len(self._launches.tasks)

    @property
    def launched(self) -> int:
        """Requests sent so far (refused ones not counted)."""
        return self._launches.launched

    async def aclose(self) -> None:
        """Launch nothing more, and wait for the launches in flight to finish."""
        await super().aclose()


def _plain_attempt(launch: Launch) -> Attempt:
    async def attempt(index: int, request: LaunchRequest, body: Mapping[str, Any]) -> LaunchOutcome:
        try:
            execution = await launch(body)
        except Exception as exc:
            return LaunchOutcome(index=index, request=request, error=exc)
        return LaunchOutcome(index=index, request=request, execution=execution)

    return attempt


class _LaunchRun:
    """The state of a `LaunchBatch`, kept apart so its tasks never keep the iterator alive."""

    def __init__(
        self,
        requests: Iterable[LaunchRequest] | AsyncIterable[Any],
        concurrency: int,
        build_body: BuildBody,
        attempt: Attempt,
        lifecycle: Lifecycle | None,
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
        self._attempt = attempt
        #: The client's: once it is closed, no more input is read (an endless one included).
        self._lifecycle = lifecycle
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
            if self._lifecycle is None or self._lifecycle.closed:
                # (Once closed, the launches in flight end at once: wait for their news.)
                await self._signal.wait()
                continue
            try:
                # Waiting for news is a call in flight: closing the client ends it.
                with self._lifecycle.in_flight():
                    await self._signal.wait()
            except ClientClosedError:
                self._stop_reading()

    @property
    def _finished(self) -> bool:
        return self._exhausted and not (self._lookahead or self.tasks or self._readers)

    def _fill(self) -> None:
        """Start launches while the concurrency and the outcome buffer allow.

        A 429 holds nothing back here: the client's door pauses and paces every request
        (these launches and any other call of the client) as one.
        """
        if self._lifecycle is not None and self._lifecycle.closed:
            self._stop_reading()
        if self._closed:
            return
        while len(self.tasks) < self.concurrency and len(self._ready) < self._buffer:
            item = self._take()
            if item is _NOTHING:
                return
            if isinstance(item, Settled):
                self._ready.append(item.outcome)
                continue
            if isinstance(item, Indexed):
                index, item = item.index, item.request
            else:
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

    def _stop_reading(self) -> None:
        """The client is closed: read no more input; once the launches sent are told, the
        loop raises ClientClosedError."""
        if self._exhausted and not self._lookahead:
            return
        self._exhausted = True
        # Read but never sent: nothing to tell about them.
        self._lookahead.clear()
        self._readers.cancel()
        if self._input_error is None:
            self._input_error = ClientClosedError(
                "the TransactionLink client is closed: launch_many launches nothing more"
            )

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
        outcome = await self._attempt(index, request, body)
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
