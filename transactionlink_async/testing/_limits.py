"""The fake's rate limits (token buckets answering 429 + Retry-After) and answer delays."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._faults import method_matches, path_matches

__all__ = ["AnswerDelay", "RateLimitRule", "RouteControls", "parse_delay", "parse_rate_limit"]


def _finite(name: str, value: object, *, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or (number <= minimum if strict else number < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


@dataclass(eq=False)
class RateLimitRule:
    """At most `per_second` matching requests a second, `burst` at once; the rest get 429.

    A token bucket, full at first. A refused request does nothing and is answered 429
    with `Retry-After`: `retry_after` seconds when given, else the seconds until a token
    is free, rounded up to a whole second (at least 1), as real APIs write it.
    """

    method: str
    path_glob: str
    per_second: float
    burst: float = 1.0
    retry_after: float | None = None
    admitted: int = field(default=0, init=False)
    refused: int = field(default=0, init=False)
    _tokens: float = field(default=math.nan, init=False, repr=False)
    _stamp: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.per_second = _finite("per_second", self.per_second, minimum=0.0, strict=True)
        self.burst = _finite("burst", self.burst, minimum=1.0, strict=False)
        if self.retry_after is not None:
            self.retry_after = _finite("retry_after", self.retry_after, minimum=0.0, strict=False)

    def matches(self, method: str, path: str) -> bool:
        return method_matches(self.method, method) and path_matches(self.path_glob, path)

    def admit(self, now: float) -> float | None:
        """Spend a token at `now`: None when there was one, else the Retry-After in seconds."""
        if math.isnan(self._tokens):
            self._tokens, self._stamp = self.burst, now
        elif now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
            self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.admitted += 1
            return None
        self.refused += 1
        if self.retry_after is not None:
            return self.retry_after
        return float(max(1, math.ceil((1.0 - self._tokens) / self.per_second)))


@dataclass(eq=False)
class AnswerDelay:
    """Every matching answer goes out `seconds` late (429s of a rate limit included)."""

    method: str
    path_glob: str
    seconds: float

    def __post_init__(self) -> None:
        self.seconds = _finite("seconds", self.seconds, minimum=0.0, strict=False)

    def matches(self, method: str, path: str) -> bool:
        return method_matches(self.method, method) and path_matches(self.path_glob, path)


class RouteControls:
    """The rate limits and answer delays in force; setting one for a route replaces its old one."""

    def __init__(self) -> None:
        self._limits: dict[tuple[str, str], RateLimitRule] = {}
        self._delays: dict[tuple[str, str], AnswerDelay] = {}

    def set_limit(self, rule: RateLimitRule) -> RateLimitRule:
        self._limits[(rule.method.upper(), rule.path_glob)] = rule
        return rule

    def set_delay(self, delay: AnswerDelay) -> AnswerDelay:
        key = (delay.method.upper(), delay.path_glob)
        if delay.seconds > 0:
            self._delays[key] = delay
        else:
            self._delays.pop(key, None)
        return delay

    def clear_limits(self) -> None:
        self._limits.clear()

    def clear_delays(self) -> None:
        self._delays.clear()

    @property
    def limits(self) -> Iterator[RateLimitRule]:
        return iter(list(self._limits.values()))

    def admit(self, method: str, path: str, now: float) -> float | None:
        """None when every matching limit had a token, else the longest Retry-After.

        Each matching limit spends a token either way, as layered limits of real APIs do.
        """
        if not self._limits:
            return None
        worst: float | None = None
        for rule in self._limits.values():
            if rule.matches(method, path):
                wait = rule.admit(now)
                if wait is not None and (worst is None or wait > worst):
                    worst = wait
        return worst

    def delay(self, method: str, path: str) -> float:
        """The longest delay set for this request (0.0: none)."""
        if not self._delays:
            return 0.0
        return max(
            (d.seconds for d in self._delays.values() if d.matches(method, path)), default=0.0
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "rate_limits": [
                {
                    "method": r.method,
                    "path": r.path_glob,
                    "per_second": r.per_second,
                    "burst": r.burst,
                    "retry_after": r.retry_after,
                    "admitted": r.admitted,
                    "refused": r.refused,
                }
                for r in self._limits.values()
            ],
            "delays": [
                {"method": d.method, "path": d.path_glob, "seconds": d.seconds}
                for d in self._delays.values()
            ],
        }


def _options(words: list[str], allowed: set[str]) -> dict[str, float]:
    options: dict[str, float] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or name not in allowed:
            raise ValueError(f"expected one of {sorted(allowed)} as name=value, got {word!r}")
        options[name] = float(value)
    return options


def parse_rate_limit(text: str) -> RateLimitRule:
    """ "POST /workflows 100 burst=10 retry_after=1" (method, path glob, per second, options)."""
    words = text.split()
    if len(words) < 3:
        raise ValueError(
            f"a rate limit is 'METHOD PATH_GLOB PER_SECOND [burst=N] [retry_after=S]', got {text!r}"
        )
    options: Mapping[str, float] = _options(words[3:], {"burst", "retry_after"})
    return RateLimitRule(words[0], words[1], float(words[2]), **options)


def parse_delay(text: str) -> AnswerDelay:
    """ "POST /workflows 0.1" (method, path glob, seconds)."""
    words = text.split()
    if len(words) != 3:
        raise ValueError(f"an answer delay is 'METHOD PATH_GLOB SECONDS', got {text!r}")
    return AnswerDelay(words[0], words[1], float(words[2]))
