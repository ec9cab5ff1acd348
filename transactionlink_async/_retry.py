"""Retry and polling policies, and the pure decisions made from them (no I/O, no sleeping)."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

import attrs

from ._validate import check_number

__all__ = [
    "WEBHOOKS_RECENT",
    "Failure",
    "GiveUp",
    "PollPolicy",
    "RetryAfterTooLong",
    "RetryIn",
    "RetryMode",
    "RetryPolicy",
    "backoff_delay",
    "decide_retry",
    "parse_retry_after",
    "poll_delay",
    "safety_delay",
    "webhooks_flowing",
]

#: In auto mode (`PollPolicy.webhooks=None`), webhooks count as flowing while the client
#: handled a delivery within this many seconds.
WEBHOOKS_RECENT = 600.0

Random = Callable[[float, float], float]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_number(attribute.name, value, above=0)


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_number(attribute.name, value, at_least=0)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How API calls are retried: attempts, full-jitter backoff, and how far Retry-After goes."""

    max_attempts: int = attrs.field(default=4)
    backoff_base: float = attrs.field(default=0.5, validator=_positive)
    backoff_cap: float = attrs.field(default=8.0, validator=_positive)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

    @max_attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_attempts must be an int >= 1, got {value!r}")

    @classmethod
    def no_retries(cls) -> RetryPolicy:
        """One attempt per call: every failure is raised as it comes."""
        return cls(max_attempts=1)


def _optional_bool(_: object, attribute: attrs.Attribute[bool | None], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be True, False or None, got {value!r}")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How `wait_for_completion` spaces its status checks.

    While webhooks flow, a delivery ends the wait, and polling is only a safety net:
    scheduled checks are then `safety_interval` apart (±jitter), so a delivery that never
    arrives is still caught within that time. The safety net of all of a client's waits
    together makes at most about `safety_rate` checks a second: with more than
    `safety_interval * safety_rate` waits (6,000 by default), each one's safety interval
    is their number over `safety_rate` (100,000 waits: 1,000 s), so that checks for
    deliveries that are rarely lost never crowd out the ones that came. Each wait counts
    the others when its safety sleep begins: waits started together reach that pace
    after the first of them have had one safety check.
    `webhooks=None` (the default) tells from the client itself: webhooks flow once it
    handled a verified delivery in the last 10 minutes (`tl.webhooks.handle`, the ready
    receivers). `True` says they are set up (stretch from the first check); `False` polls
    on the schedule above whatever comes.
    """

    initial: float = attrs.field(default=1.0, validator=_positive)
    multiplier: float = attrs.field(default=1.5)
    maximum: float = attrs.field(default=30.0, validator=_positive)
    jitter: float = attrs.field(default=0.2)
    honour_retry_after: bool = True
    safety_interval: float = attrs.field(default=60.0, validator=_positive)
    safety_rate: float = attrs.field(default=100.0, validator=_positive)
    webhooks: bool | None = attrs.field(default=None, validator=_optional_bool)

    @multiplier.validator
    def _check_multiplier(self, _: attrs.Attribute[float], value: float) -> None:
        check_number("multiplier", value, at_least=1)

    @jitter.validator
    def _check_jitter(self, _: attrs.Attribute[float], value: float) -> None:
        check_number("jitter", value, at_least=0, below=1)


class RetryMode(enum.Enum):
    """What a request may safely be sent again after."""

    #: Reading, or an action that is harmless to repeat (GET, cancel, auth).
    IDEMPOTENT = "idempotent"
    #: Creates something: resent only when it provably never arrived, or on 429.
    CREATING = "creating"
    #: Never resent.
    NEVER = "never"


class Failure(enum.Enum):
    """Why an attempt produced no HTTP answer."""

    #: The connection could not be opened: the request never left.
    NOT_SENT = "not_sent"
    #: Sent (or possibly sent) but no complete answer came back.
    NO_ANSWER = "no_answer"


@attrs.frozen
class RetryIn:
    """Sleep this many seconds, then send again."""

    delay: float


@attrs.frozen
class GiveUp:
    """Stop and surface the answer or error as it is."""

    reason: str


@attrs.frozen
class RetryAfterTooLong:
    """The server asked for a longer pause than the policy allows: raise at once."""

    retry_after: float


Decision = RetryIn | GiveUp | RetryAfterTooLong


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # NaN and infinity are not waits; negative means "now".
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(policy: RetryPolicy, retry_number: int, rand: Random = random.uniform) -> float:
    """Full-jitter exponential backoff before retry `retry_number` (0 for the first retry)."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** min(retry_number, 62))
    return rand(0.0, ceiling)


def decide_retry(
    policy: RetryPolicy,
    *,
    mode: RetryMode,
    attempt: int,
    status: int | None = None,
    failure: Failure | None = None,
    headers: Mapping[str, str] | None = None,
    now: float = 0.0,
    rand: Random = random.uniform,
) -> Decision:
    """Decide what follows attempt number `attempt` (1-based) that ended with `status` or `failure`.

    Exactly one of `status` and `failure` describes the outcome; a status below 400 never
    reaches here.
    """
    if (status is None) == (failure is None):
        raise ValueError("give exactly one of status and failure")
    retry_after = None
    if status is not None and headers is not None:
        retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)

    if status == 429 and retry_after is not None and retry_after > policy.max_retry_after:
        # Whatever the mode: a long pause is the caller's decision, not ours to sleep through.
        return RetryAfterTooLong(retry_after)
    if not _may_resend(mode, status, failure, policy):
        return GiveUp(_why_not(mode, status, failure))
    if attempt >= policy.max_attempts:
        return GiveUp(f"gave up after {attempt} attempts")
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return GiveUp(f"server asked to wait {retry_after:.0f}s, more than max_retry_after")
        return RetryIn(retry_after)
    return RetryIn(backoff_delay(policy, attempt - 1, rand))


def _may_resend(
    mode: RetryMode, status: int | None, failure: Failure | None, policy: RetryPolicy
) -> bool:
    if mode is RetryMode.NEVER:
        return False
    if mode is RetryMode.CREATING:
        # 429 is a refusal before any work was done; NOT_SENT never reached the server.
        return failure is Failure.NOT_SENT or status == 429
    return failure is not None or status in policy.retry_statuses


def _why_not(mode: RetryMode, status: int | None, failure: Failure | None) -> str:
    if mode is RetryMode.CREATING and (failure is not None or status in (408, 500, 502, 503, 504)):
        return "a request that creates something is not resent once it may have arrived"
    if failure is not None:
        return "not retried"
    return f"HTTP {status} is not retried"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lower:
                return candidate
    return value


def poll_delay(
    policy: PollPolicy,
    poll_number: int,
    *,
    retry_after: float | None = None,
    rand: Random = random.uniform,
) -> float:
    """Seconds to sleep before status check `poll_number` (0 for the first poll)."""
    if retry_after is not None and policy.honour_retry_after:
        # "Retry-After: 0" or a date in the past (clock skew) must not turn a wait into a spin.
        return max(retry_after, policy.initial)
    try:
        growth = float(policy.multiplier) ** min(poll_number, 200)
    except OverflowError:  # a large multiplier passes any ceiling in a few polls
        growth = math.inf
    base = min(policy.maximum, policy.initial * growth)
    return max(0.0, base * (1.0 + rand(-policy.jitter, policy.jitter)))


def webhooks_flowing(policy: PollPolicy, last_wake: float | None, now: float) -> bool:
    """Whether a wait may rely on webhooks and poll only as a safety net."""
    if policy.webhooks is not None:
        return policy.webhooks
    return last_wake is not None and now - last_wake <= WEBHOOKS_RECENT


def safety_delay(policy: PollPolicy, waits: int = 1, rand: Random = random.uniform) -> float:
    """Seconds between the safety-net checks of a wait that webhooks will end, when the
    client has `waits` waits: their checks together stay within `safety_rate`."""
    interval = max(policy.safety_interval, waits / policy.safety_rate)
    return interval * (1.0 + rand(-policy.jitter, policy.jitter))
