"""Fault rules for the fake server and the pure logic that picks the one a request meets."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DropMode", "FaultRule", "FaultRules", "method_matches", "path_matches"]

DropMode = Literal["before_body", "after_body"]


@functools.lru_cache(maxsize=256)
def _glob_regex(glob: str) -> re.Pattern[str]:
    # "*" stays inside one path segment so "/workflows/*" does not also catch
    # "/workflows/x/result"; "**" crosses segments.
    parts: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            parts.append(".*")
            i += 2
        elif glob[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(parts))


def path_matches(glob: str | None, path: str) -> bool:
    """Whether `path` matches `glob` ("*" = one segment's characters, "**" = anything)."""
    return glob is None or _glob_regex(glob).fullmatch(path) is not None


def method_matches(pattern: str | None, method: str) -> bool:
    """Whether an HTTP method matches a method pattern (None or "*" = any)."""
    return pattern is None or pattern == "*" or pattern.upper() == method.upper()


@dataclass(eq=False)
class FaultRule:
    """What to do to the next `times` requests matching `method` and `path_glob`.

    `status`/`body` answer instead of the real handler (so nothing is created);
    `retry_after` adds that header to whatever answer goes out; `drop` closes the TCP
    connection before or after reading the request body, without answering; `delay`
    waits that long before the answer (or the drop) goes out, after the handler ran;
    `truncate_at` announces the full Content-Length but sends only that many bytes.
    """

    method: str
    path_glob: str
    status: int | None = None
    retry_after: str | float | None = None
    body: Any = None
    times: int | None = 1
    drop: DropMode | None = None
    delay: float = 0.0
    truncate_at: int | None = None
    content_type: str | None = None
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        if self.drop not in (None, "before_body", "after_body"):
            raise ValueError('drop must be "before_body", "after_body" or None')
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.truncate_at is not None and self.truncate_at < 0:
            raise ValueError("truncate_at must not be negative")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.drop is not None and (
            self.answers or self.truncate_at is not None or self.retry_after is not None
        ):
            raise ValueError("a dropped connection sends no answer to shape")
        if not self.kinds:
            raise ValueError("a fault needs status, body, retry_after, drop, delay or truncate_at")

    @property
    def answers(self) -> bool:
        """Whether the rule answers in place of the real handler."""
        return self.status is not None or self.body is not None

    @property
    def remaining(self) -> int | None:
        """Uses left, None for a rule that never runs out."""
        return None if self.times is None else self.times - self.fired

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    @property
    def kinds(self) -> tuple[str, ...]:
        """The names this rule's effects are counted under in `faults_fired`."""
        kinds: list[str] = []
        if self.answers:
            kinds.append("status")
        if self.retry_after is not None:
            kinds.append("retry_after")
        if self.drop is not None:
            kinds.append(f"drop_{self.drop}")
        if self.delay > 0:
            kinds.append("delay")
        if self.truncate_at is not None:
            kinds.append("truncate")
        return tuple(kinds)

    @property
    def retry_after_header(self) -> str | None:
        """The Retry-After header value: seconds as an integer when whole, or the given text."""
        value = self.retry_after
        if value is None or isinstance(value, str):
            return value
        return str(int(value)) if float(value).is_integer() else str(value)

    def matches(self, method: str, path: str) -> bool:
        return method_matches(self.method, method) and path_matches(self.path_glob, path)


class FaultRules:
    """The active rules, matched in insertion order and dropped once used up."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self.fired: Counter[str] = Counter()

    def add(self, rule: FaultRule) -> FaultRule:
        self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching this request, with one of its uses spent."""
        for rule in self._rules:
            if rule.matches(method, path):
                rule.fired += 1
                if rule.exhausted:
                    self._rules.remove(rule)
                self.fired.update(rule.kinds)
                return rule
        return None

    def clear(self) -> None:
        self._rules.clear()

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[FaultRule]:
        return iter(list(self._rules))
