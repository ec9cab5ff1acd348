"""RateLimit: a request rate, known in advance, that the client must never exceed."""

from __future__ import annotations

import math

import attrs

__all__ = ["RateLimit", "check_rate"]


def check_rate(name: str, value: object, *, minimum: float, strict: bool) -> float:
    """`value` as a finite float above `minimum` (or at least it), else ValueError/TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    below = number <= minimum if strict else number < minimum
    if not math.isfinite(number) or below:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def _per_second(value: object) -> float:
    return check_rate("RateLimit.per_second", value, minimum=0.0, strict=True)


def _burst(value: object) -> float:
    # Below one token a request could never be sent.
    return check_rate("RateLimit.burst", value, minimum=1.0, strict=False)


@attrs.frozen
class RateLimit:
    """At most `per_second` requests a second on average, and at most `burst` at once.

    `TransactionLink(..., rate_limit=RateLimit(10))` spaces the client's requests so that
    a known API limit is never reached: with the default `burst=1` they go out evenly,
    one every 1/`per_second` seconds; a larger `burst` lets that many go out together
    after a quiet spell. Set it a little below the API's own limit.
    """

    per_second: float = attrs.field(converter=_per_second)
    burst: float = attrs.field(default=1.0, converter=_burst, kw_only=True)
