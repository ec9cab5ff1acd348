"""Pauses asked for by the API (429, or 503 with Retry-After): pure arithmetic and jitter."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = [
    "JITTER_FLOOR",
    "JITTER_SHARE",
    "check_pause",
    "extend_pause",
    "jittered",
    "pause_left",
]

Random = Callable[[float, float], float]

#: Jitter adds up to this share of a pause...
JITTER_SHARE = 0.25
#: ...and up to this many seconds more, so that even the callers whose pause is nearly
#: over when they arrive come back spread out rather than all at once.
JITTER_FLOOR = 0.05


def check_pause(seconds: float) -> float:
    """A pause length as recorded: finite and not negative, else ValueError."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a pause must be a finite number of seconds >= 0, got {seconds!r}")
    return seconds


def extend_pause(until: float | None, *, now: float, seconds: float) -> float:
    """The end of a pause once the API asks at `now` for `seconds` more: never sooner."""
    end = now + check_pause(seconds)
    return end if until is None or end > until else until


def pause_left(until: float | None, *, now: float) -> float:
    """Seconds left of a pause ending at `until` (0.0 when there is none or it is over)."""
    if until is None:
        return 0.0
    left = until - now
    return left if left > 0.0 else 0.0


def jittered(seconds: float, rand: Random = random.uniform) -> float:
    """`seconds` lengthened by a random amount: a pause the API asked for is never shortened.

    Callers told to wait the same time would otherwise all come back together, and the
    wave would be refused again in step.
    """
    extra = rand(0.0, JITTER_SHARE * seconds + JITTER_FLOOR)
    return seconds + extra if extra > 0.0 else seconds
