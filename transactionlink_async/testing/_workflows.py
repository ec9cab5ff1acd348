"""Scripted workflow progress: a pure state machine driven by polls or by a clock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FINAL_STATUSES",
    "Execution",
    "WorkflowProgress",
    "WorkflowScript",
    "default_result",
]

# The statuses after which nothing changes any more (api-facts.md, "our decision").
FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "TERMINATED", "EXPIRED", "CANCELLED"})


def default_result(execution_id: str) -> dict[str, Any]:
    """The small result a workflow without a scripted one produces."""
    return {"executionId": execution_id, "decision": "APPROVED"}


@dataclass(frozen=True)
class WorkflowScript:
    """How executions of one workflow definition move along `statuses`.

    The execution starts in its initial status (INITIALISED or CREATED) and advances one
    step along `statuses` every `polls_per_status` GETs of it, or, when
    `seconds_per_status` is set, every that many seconds of the server's clock. It then
    stays in the last status for good. `result` is JSON, raw bytes, None (no result), or
    a callable of the execution id returning either.
    """

    statuses: tuple[str, ...] = ("COMPLETED",)
    polls_per_status: int = 1
    seconds_per_status: float | None = None
    interactive: bool = False
    result: object = default_result
    name: str | None = None

    def __post_init__(self) -> None:
        if not self.statuses or not all(isinstance(s, str) and s for s in self.statuses):
            raise ValueError("statuses must be a non-empty sequence of status strings")
        if self.polls_per_status < 1:
            raise ValueError("polls_per_status must be at least 1")
        if self.seconds_per_status is not None and not self.seconds_per_status > 0:
            raise ValueError("seconds_per_status must be positive (or None to advance by polls)")


@dataclass
class WorkflowProgress:
    """Where one execution is on its script; every method takes the current clock value."""

    script: WorkflowScript
    initial_status: str
    started_at: float
    polls: int = 0
    # A status set from outside (set_status, cancel) overrides the script for good.
    pinned: str | None = None

    def poll(self, now: float) -> str:
        """Count one GET of the execution and answer its status."""
        self.polls += 1
        return self.status(now)

    def status(self, now: float) -> str:
        """The current status, without counting a poll."""
        if self.pinned is not None:
            return self.pinned
        script = self.script
        if script.seconds_per_status is not None:
            elapsed = max(0.0, now - self.started_at)
            step = math.floor(elapsed / script.seconds_per_status)
        else:
            step = self.polls // script.polls_per_status
        if step <= 0:
            return self.initial_status
        return script.statuses[min(step, len(script.statuses)) - 1]

    def pin(self, status: str) -> None:
        self.pinned = status

    def cancel(self, now: float) -> bool:
        """Move to CANCELLED unless already final; tells whether anything changed."""
        if self.status(now) in FINAL_STATUSES:
            return False
        self.pinned = "CANCELLED"
        return True


_UNSET: Any = object()


@dataclass
class Execution:
    """One workflow execution: its fixed fields, its progress and its result."""

    id: str
    document: dict[str, Any]
    progress: WorkflowProgress
    # What set_result (or cancel) decided; _UNSET means "whatever the script says".
    result_override: object = field(default=_UNSET, repr=False)
    _resolved: object = field(default=_UNSET, repr=False)

    def render(self, status: str) -> dict[str, Any]:
        """The FindWorkflowResponse JSON with `status` in it."""
        return {**self.document, "status": status}

    def cancel(self, now: float) -> bool:
        """Cancel unless final; a cancelled run produced no result unless one was set."""
        if not self.progress.cancel(now):
            return False
        if self.result_override is _UNSET:
            self.set_result(None)
        return True

    def set_result(self, result: object) -> None:
        self.result_override = result
        self._resolved = _UNSET

    def result(self, now: float) -> object | None:
        """The result (JSON value or bytes) once final, None while there is none."""
        if self.progress.status(now) not in FINAL_STATUSES:
            return None
        if self._resolved is _UNSET:
            spec = self.result_override
            if spec is _UNSET:
                spec = self.progress.script.result
            if callable(spec):
                # Resolved once so repeated fetches see the same bytes, like real storage.
                spec = spec(self.id)
            self._resolved = spec
        return self._resolved
