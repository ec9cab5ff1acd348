"""The token bucket's arithmetic (GCRA: one "theoretical arrival time" a bucket) and its checks.

The same arithmetic runs in Redis (see `_scripts.TAKE`) on Redis's clock, so every process
sharing a bucket agrees on it; here it serves the in-process budget and the tests.
"""

from __future__ import annotations

import math
import re

import attrs

__all__ = ["Reservation", "check_kind", "check_rate", "check_seconds", "reserve", "wait_of"]

#: Kinds name request classes ("launch", "read"...): short, printable, safe in a key name.
_MAX_KIND = 64
#: What a kind may be written with (it becomes part of a key name); checked on every
#: request, so in one C-level match.
_KIND = re.compile(rf"[A-Za-z0-9\-_./]{{1,{_MAX_KIND}}}")


@attrs.frozen
class Reservation:
    """Tokens taken at once: when the first may be used, and the spacing of the others."""

    #: Seconds from the reservation until the first token may be used; negative: already.
    first_wait: float
    #: Seconds between two tokens.
    interval: float


def reserve(
    tat: float, now: float, *, per_second: float, burst: float, count: int = 1
) -> tuple[float, Reservation]:
    """Take `count` tokens from a bucket of `burst` tokens refilled at `per_second`.

    Returns the bucket's new theoretical arrival time (on the clock of `tat` and `now`) and
    the reservation. Tokens are never refused: a caller past the burst is told how long to
    wait, and the next caller queues behind it, so the bucket doubles as a fair queue
    across processes.
    """
    interval = 1.0 / per_second
    start = max(tat, now)
    # Grouped so that a full bucket gives exactly 0.0, not a rounding error above it.
    first_wait = (start - now) - (burst - 1) * interval
    return start + count * interval, Reservation(first_wait=first_wait, interval=interval)


def wait_of(reservation: Reservation, index: int) -> float:
    """Seconds to wait for the `index`-th (from 0) token of a reservation."""
    return max(0.0, reservation.first_wait + index * reservation.interval)


def check_rate(per_second: object, burst: object) -> tuple[float, float]:
    """The bucket's arguments as floats, or a TypeError/ValueError saying what is wrong."""
    for name, value in (("per_second", per_second), ("burst", burst)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    return float(per_second), float(burst)  # type: ignore[arg-type]


def check_kind(kind: object) -> str:
    """A request kind fit for a key name, or a TypeError/ValueError."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, got {type(kind).__name__}")
    if _KIND.fullmatch(kind) is None:
        raise ValueError(
            f"kind must be 1 to {_MAX_KIND} letters, digits or -_./ characters, got {kind!r}"
        )
    return kind


def check_seconds(seconds: object) -> float:
    """A pause length: a finite number of seconds, 0 or more."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a finite number, 0 or more, got {seconds!r}")
    return float(seconds)
