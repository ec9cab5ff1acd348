"""Token bucket arithmetic: pure, on a clock the caller reads."""

from __future__ import annotations

import attrs

__all__ = ["Bucket", "take_token"]


@attrs.frozen
class Bucket:
    """A token bucket's state at `stamp` (a reading of the caller's clock).

    `tokens` may be negative: each unit below zero is a caller already promised a later
    turn, so concurrent takers queue up in order without taking the same slot twice.
    """

    tokens: float
    stamp: float


def take_token(
    bucket: Bucket | None, *, now: float, per_second: float, burst: float
) -> tuple[Bucket, float]:
    """Take one token; the new state, and the seconds to wait before using it (0.0: now).

    A bucket seen for the first time (None) is full. A clock reading older than the
    bucket's own (another process's clock, a clock that stepped back) adds nothing.
    """
    if bucket is None:
        tokens, stamp = burst, now
    else:
        elapsed = now - bucket.stamp
        if elapsed > 0:
            tokens, stamp = min(burst, bucket.tokens + elapsed * per_second), now
        else:
            tokens, stamp = min(burst, bucket.tokens), bucket.stamp
    tokens -= 1.0
    wait = 0.0 if tokens >= 0.0 else -tokens / per_second
    return Bucket(tokens, stamp), wait
