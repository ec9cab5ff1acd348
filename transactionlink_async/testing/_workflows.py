"""Scripted workflow progress: a pure state machine driven by polls or by a clock."""

from __future__ import annotations

import bisect
import random
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
    `seconds_per_status` is set, every that many seconds of the server's clock. With
    `finish_between=(low, high)` instead, each execution draws its own finishing time,
    uniform in [low, high) seconds after its start (from `random.Random(seed)`), and
    takes equal clock steps to reach the last status then. It then stays in the last
    status for good. `result` is JSON, raw bytes, None (no result), or a callable of the
    execution id returning either.
    """

    statuses: tuple[str, ...] = ("COMPLETED",)
    polls_per_status: int = 1
    seconds_per_status: float | None = None
    interactive: bool = False
    result: object = default_result
    name: str | None = None
    finish_between: tuple[float, float] | None = None
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.statuses or not all(isinstance(s, str) and s for s in self.statuses):
            raise ValueError("statuses must be a non-empty sequence of status strings")
        if self.polls_per_status < 1:
            raise ValueError("polls_per_status must be at least 1")
        if self.seconds_per_status is not None and not self.seconds_per_status > 0:
            raise ValueError("seconds_per_status must be positive (or None to advance by polls)")
        if self.finish_between is not None:
            low, high = self.finish_between
            if not 0 < low <= high:
                raise ValueError("finish_between must be (low, high) with 0 < low <= high")
            if self.seconds_per_status is not None:
                raise ValueError("give seconds_per_status or finish_between, not both")
        object.__setattr__(self, "_random", random.Random(self.seed))

    def step_seconds(self) -> float | None:
        """Seconds per status for a new execution (drawn when `finish_between` is set)."""
        if self.finish_between is None:
            return self.seconds_per_status
        return self._random.uniform(*self.finish_between) / len(self.statuses)


@dataclass
class WorkflowProgress:
    """Where one execution is on its script; every method takes the current clock value."""

    script: WorkflowScript
    initial_status: str
    started_at: float
    polls: int = 0
    # A status set from outside (set_status, cancel) overrides the script for good.
    pinned: str | None = None
    #: Clock seconds per status (None: the script advances by polls); drawn from the
    #: script when not given.
    step_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.step_seconds is None:
            self.step_seconds = self.script.step_seconds()
        # Computed once: status() and the fake's schedule of changes must agree exactly.
        self._step_times: tuple[float, ...] = (
            ()
            if self.step_seconds is None
            else tuple(
                self.started_at + self.step_seconds * n
                for n in range(1, len(self.script.statuses) + 1)
            )
        )

    def step_times(self) -> tuple[float, ...]:
        """The clock times at which the script moves on (none when it advances by polls)."""
        return self._step_times

    @property
    def finishes_at(self) -> float | None:
        """When the script reaches its last status by the clock (None: by polls)."""
        return self._step_times[-1] if self._step_times else None

    def poll(self, now: float) -> str:
        """Count one GET of the execution and answer its status."""
        self.polls += 1
        return self.status(now)

    def status(self, now: float) -> str:
        """The current status, without counting a poll."""
        if self.pinned is not None:
            return self.pinned
        script = self.script
        if self._step_times:
            step = bisect.bisect_right(self._step_times, now)
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
