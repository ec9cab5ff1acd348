"""Wrapping a wait or a download in its operation span, at no cost when nobody watches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from .hub import Observation
from .trace import OperationTrace

__all__ = ["Notes", "traced"]

T = TypeVar("T")

#: What an operation's result says about it, as (name, value) pairs.
Notes = Callable[[T], Iterable[tuple[str, str | int | float | bool]]]


def traced(
    observation: Observation,
    name: str,
    execution_id: str,
    call: Awaitable[T],
    notes: Notes[T] | None = None,
) -> Awaitable[T]:
    """`call`, inside an operation span when an observer wants one; else `call` itself."""
    observer = observation.current
    operation = None if observer is None else observer.operation(name, execution_id)
    if operation is None:
        return call
    return _run(operation, call, notes)


async def _run(operation: OperationTrace, call: Awaitable[T], notes: Notes[T] | None) -> T:
    try:
        result = await call
    except BaseException as exc:
        operation.end(exc)
        raise
    if notes is not None:
        for key, value in notes(result):
            operation.note(key, value)
    operation.end(None)
    return result
