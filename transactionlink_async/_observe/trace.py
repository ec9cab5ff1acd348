"""What the send path tells an observer: one call (its attempts and answers), or an operation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import yarl

__all__ = ["CallTrace", "Observer", "OperationTrace"]


class CallTrace(Protocol):
    """One HTTP call, from its first attempt to its outcome (retries included)."""

    def attempt(self, number: int) -> None:
        """Attempt `number` (1-based) is about to be sent."""

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        """The attempt got an HTTP answer."""

    def failed(self, detail: str) -> None:
        """The attempt got no usable answer (`detail` holds no URL and no header)."""

    def retrying(self, delay: float) -> None:
        """Another attempt follows in `delay` seconds."""

    def renewed(self) -> None:
        """The token was renewed after a 401 and the call is replayed."""

    def end(self, error: BaseException | None) -> None:
        """The call is over: returned (error None) or raised `error`."""


class OperationTrace(Protocol):
    """A wait or a download, spanning the calls it makes."""

    def note(self, name: str, value: str | int | float | bool) -> None:
        """Record what the operation found out (a status, a size...)."""

    def end(self, error: BaseException | None) -> None:
        """The operation is over."""


class Observer(Protocol):
    """Something watching the client's calls; the send path asks it only when one is set."""

    def call(self, method: str, url: yarl.URL, *, target: str) -> CallTrace:
        """A call begins; `target` is "api" or "storage" (a pre-signed link)."""

    def operation(self, name: str, execution_id: str) -> OperationTrace | None:
        """An operation ("wait", "download") on one execution begins; None to skip it."""
