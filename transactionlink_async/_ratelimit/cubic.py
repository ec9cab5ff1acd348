"""The CUBIC rate curve (as in TCP CUBIC and botocore's adaptive retries): pure arithmetic."""

from __future__ import annotations

import attrs

__all__ = ["Cubic", "cubic_curve", "cubic_rate"]

#: Above this a rate is as good as unlimited; it keeps the arithmetic finite.
MAX_RATE = 1e6


@attrs.frozen
class Cubic:
    """A rate climbing back after a throttle: from `start` at `since` (the end of the pause)
    up to `ceiling` in `k` seconds, flat around it, then faster and faster beyond it.

    `scale` is relative (the curve's constant is `scale * ceiling`), so the curve has the
    same shape in time whatever the rate: `k` depends only on `start / ceiling`.
    """

    start: float
    ceiling: float
    k: float
    since: float
    scale: float


def cubic_curve(*, start: float, ceiling: float, since: float, scale: float) -> Cubic:
    """The curve from `start` back to `ceiling` (never below `start`)."""
    ceiling = max(ceiling, start)
    k = ((ceiling - start) / (scale * ceiling)) ** (1.0 / 3.0)
    return Cubic(start=start, ceiling=ceiling, k=k, since=since, scale=scale)


def cubic_rate(curve: Cubic, now: float) -> float:
    """The curve's rate at `now` (its start until `since`)."""
    elapsed = now - curve.since
    if elapsed <= 0.0:
        return curve.start
    # Past the point where the rate would exceed MAX_RATE, stop evaluating the cube.
    x = min(elapsed - curve.k, 1e4)
    rate = curve.ceiling * (1.0 + curve.scale * x * x * x)
    return min(max(rate, curve.start), MAX_RATE)
