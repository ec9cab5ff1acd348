"""The webhook signing keys by kid: a bounded cache, one fetch per kid, and a fetch budget."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
import attrs

from .errors import TransactionLinkError, WebhookKeyUnavailableError, WebhookVerificationError

__all__ = ["KeyCache", "TokenBucket"]

logger = logging.getLogger("transactionlink_async.webhooks")

K = TypeVar("K")

#: Fetches the key text for a kid; None when the API does not know the kid (404).
FetchKey = Callable[[str], Awaitable["bytes | None"]]


class TokenBucket:
    """At most `capacity` takes at once, refilled by one every `interval` seconds."""

    def __init__(self, capacity: int, interval: float, *, now: float) -> None:
        if capacity < 1 or not interval > 0:
            raise ValueError("a token bucket needs capacity >= 1 and interval > 0")
        self._capacity = capacity
        self._interval = interval
        self._tokens = float(capacity)
        self._updated = now

    def take(self, now: float) -> bool:
        """Use one token if there is one."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self._capacity), self._tokens + elapsed / self._interval)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@attrs.define
class _Known(Generic[K]):
    key: K
    fresh_until: float


@attrs.define
class _Pending(Generic[K]):
    done: anyio.Event = attrs.Factory(anyio.Event)
    #: The fetch's outcome for the tasks that waited on it; None if it was cancelled.
    outcome: K | WebhookVerificationError | None = None


class KeyCache(Generic[K]):
    """Public keys by kid, fetched through `fetch` and turned into keys by `load`.

    - at most `max_keys` keys, least recently used dropped first; a key is fetched again
      after `key_ttl` seconds, and kept in use when that fetch cannot reach the API;
    - however many verifications need a new kid at once, one fetch is made;
    - a kid the API does not know is remembered for `miss_ttl` seconds (no fetch);
    - at most `fetch_burst` fetches at once, then one per `fetch_interval` seconds, so a
      flood of made-up kids cannot turn into a flood of API calls;
    - a fetch that fails or takes over `fetch_timeout` seconds raises
      WebhookKeyUnavailableError (try again later); nothing is cached.
    """

    def __init__(
        self,
        fetch: FetchKey,
        load: Callable[[bytes], K],
        *,
        max_keys: int = 32,
        key_ttl: float = 24 * 3600.0,
        miss_ttl: float = 15.0,
        max_misses: int = 1024,
        fetch_burst: int = 8,
        fetch_interval: float = 2.0,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1 or max_misses < 1:
            raise ValueError("max_keys and max_misses must be >= 1")
        self._fetch = fetch
        self._load = load
        self._max_keys = max_keys
        self._key_ttl = key_ttl
        self._miss_ttl = miss_ttl
        self._max_misses = max_misses
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._bucket = TokenBucket(fetch_burst, fetch_interval, now=clock())
        self._known: OrderedDict[str, _Known[K]] = OrderedDict()
        # kid -> (until when, the rejection to repeat meanwhile)
        self._misses: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._pending: dict[str, _Pending[K]] = {}
        #: How many fetches were started (for tests and monitoring).
        self.fetches = 0

    def __len__(self) -> int:
        return len(self._known)

    def clear(self) -> None:
        """Forget every key and every miss."""
        self._known.clear()
        self._misses.clear()

    async def get(self, kid: str) -> K:
        """The key for `kid`; WebhookVerificationError (or its Unavailable subclass) if none."""
        while True:
            now = self._clock()
            known = self._known.get(kid)
            if known is not None:
                self._known.move_to_end(kid)
                if now < known.fresh_until:
                    return known.key
            else:
                miss = self._misses.get(kid)
                if miss is not None:
                    if now < miss[0]:
                        raise WebhookVerificationError(miss[1])
                    del self._misses[kid]
            pending = self._pending.get(kid)
            if pending is None:
                break
            await pending.done.wait()
            if isinstance(pending.outcome, WebhookVerificationError):
                # A copy each: one exception object raised in many tasks mixes tracebacks.
                raise type(pending.outcome)(*pending.outcome.args)
            if pending.outcome is not None:
                return pending.outcome
            # The fetching task was cancelled: look again, and fetch ourselves if needed.

        pending = _Pending[K]()
        self._pending[kid] = pending
        try:
            outcome = await self._fetch_outcome(kid)
            pending.outcome = outcome
        finally:
            del self._pending[kid]
            pending.done.set()
        if isinstance(outcome, WebhookVerificationError):
            raise outcome
        return outcome

    async def _fetch_outcome(self, kid: str) -> K | WebhookVerificationError:
        stale = self._known.get(kid)
        if not self._bucket.take(self._clock()):
            if stale is not None:
                return stale.key
            return WebhookKeyUnavailableError(
                "webhook rejected for now: too many signing key lookups; the sender should retry"
            )
        self.fetches += 1
        try:
            with anyio.fail_after(self._fetch_timeout):
                text = await self._fetch(kid)
        except (TransactionLinkError, TimeoutError) as exc:
            logger.warning("could not fetch webhook signing key %s: %s", kid, exc)
            if stale is not None:
                # A key we verified with before stays good while the API cannot be asked.
                return stale.key
            return WebhookKeyUnavailableError(
                "webhook rejected for now: the signing key could not be fetched "
                f"({type(exc).__name__}); the sender should retry"
            )
        if text is None:
            return self._forget(kid, f"webhook rejected: unknown signing key id {kid!r}")
        try:
            key = self._load(text)
        except ValueError as exc:
            return self._forget(
                kid, f"webhook rejected: the signing key for kid {kid!r} is unusable ({exc})"
            )
        self._known[kid] = _Known(key, self._clock() + self._key_ttl)
        self._known.move_to_end(kid)
        while len(self._known) > self._max_keys:
            self._known.popitem(last=False)
        return key

    def _forget(self, kid: str, reason: str) -> WebhookVerificationError:
        """Drop any key for `kid` and remember, for a while, that it has none."""
        self._known.pop(kid, None)
        self._misses[kid] = (self._clock() + self._miss_ttl, reason)
        self._misses.move_to_end(kid)
        while len(self._misses) > self._max_misses:
            self._misses.popitem(last=False)
        return WebhookVerificationError(reason)
