"""Jitter for the pauses the API asks for (429, or 503 with Retry-After): it only lengthens."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["JITTER_FLOOR", "JITTER_SHARE", "jittered"]

Random = Callable[[float, float], float]

#: Jitter adds up to this share of a pause...
JITTER_SHARE = 0.25
#: ...and up to this many seconds more, so that even the callers whose pause is nearly
#: over when they arrive come back spread out rather than all at once.
JITTER_FLOOR = 0.05


def jittered(seconds: float, rand: Random = random.uniform) -> float:
    """`seconds` lengthened by a random amount: a pause the API asked for is never shortened.

    Callers told to wait the same time would otherwise all come back together, and the
    wave would be refused again in step.
    """
    extra = rand(0.0, JITTER_SHARE * seconds + JITTER_FLOOR)
    return seconds + extra if extra > 0.0 else seconds
