"""The webhook signing keys by kid: a bounded cache, one fetch per kid, and a fetch budget."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
import attrs

from ..errors import TransactionLinkError, WebhookKeyUnavailableError, WebhookVerificationError

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
    - fetches are budgeted, so a flood of made-up kids cannot turn into a flood of API
      calls: a kid seen for the first time draws on one budget (`fetch_burst` at once,
      then one per `fetch_interval` seconds). A kid turned away for lack of budget is
      remembered (the last `max_refused` of them, for `refused_ttl` seconds); when it
      comes again it draws first on a second budget of the same size, which kids named
      only once never reach. The sender retries a refused delivery with the same kid, so
      a flood of made-up kids, each named once, cannot hold a real new kid back past its
      first retry (while under `max_refused` made-up kids arrive between the two);
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
        max_refused: int = 16384,
        refused_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1 or max_misses < 1 or max_refused < 1:
            raise ValueError("max_keys, max_misses and max_refused must be >= 1")
        self._fetch = fetch
        self._load = load
        self._max_keys = max_keys
        self._key_ttl = key_ttl
        self._miss_ttl = miss_ttl
        self._max_misses = max_misses
        self._fetch_timeout = fetch_timeout
        self._max_refused = max_refused
        self._refused_ttl = refused_ttl
        self._clock = clock
        self._first_sight = TokenBucket(fetch_burst, fetch_interval, now=clock())
        self._asked_again = TokenBucket(fetch_burst, fetch_interval, now=clock())
        self._known: OrderedDict[str, _Known[K]] = OrderedDict()
        # kid -> (until when, the rejection to repeat meanwhile)
        self._misses: OrderedDict[str, tuple[float, str]] = OrderedDict()
        # Kids turned away for lack of budget, oldest refusal first: a short keyed digest
        # of the kid -> until when it counts as asked again. Digests keep the memory small
        # (a kid may be 200 characters); the secret key keeps collisions unplannable.
        self._refused: OrderedDict[bytes, float] = OrderedDict()
        self._digest_key = os.urandom(16)
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
        if not self._take_budget(kid):
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

    def _take_budget(self, kid: str) -> bool:
        """Whether `kid` may be fetched now; if not, remember that it was turned away."""
        now = self._clock()
        while self._refused and next(iter(self._refused.values())) <= now:
            self._refused.popitem(last=False)
        tag = hashlib.blake2b(kid.encode(), digest_size=16, key=self._digest_key).digest()
        if tag in self._refused:
            if self._asked_again.take(now) or self._first_sight.take(now):
                del self._refused[tag]
                return True
        elif self._first_sight.take(now):
            return True
        self._refused[tag] = now + self._refused_ttl
        self._refused.move_to_end(tag)
        while len(self._refused) > self._max_refused:
            self._refused.popitem(last=False)
        return False

    def _forget(self, kid: str, reason: str) -> WebhookVerificationError:
        """Drop any key for `kid` and remember, for a while, that it has none."""
        self._known.pop(kid, None)
        self._misses[kid] = (self._clock() + self._miss_ttl, reason)
        self._misses.move_to_end(kid)
        while len(self._misses) > self._max_misses:
            self._misses.popitem(last=False)
        return WebhookVerificationError(reason)
