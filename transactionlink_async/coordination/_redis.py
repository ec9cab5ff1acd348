"""RedisCoordination: every process on one Redis and namespace acts as one client."""

from __future__ import annotations

import math
import secrets

from ._base import Coordination, Member, RateBudget, WakeNews, WakeTarget
from ._breaker import BreakerPolicy
from ._connection import DEFAULT_REDIS_TIMEOUT, check_url, connect, redacted_url, require_redis
from ._crypto import CredentialKeys, require_cryptography
from ._guard import Guard
from ._keys import Keys, check_namespace
from ._local_budget import LocalRateBudget
from ._markers import Markers
from ._news import MemberNews
from ._redis_budget import RedisRateBudget
from ._redis_news import RedisNews
from ._redis_tokens import RedisTokenStore
from ._subscriber import Subscriber
from ._token_share import TokenShare

__all__ = ["RedisCoordination"]

#: Connections to Redis per process: batches keep the need low, and a burst of callers
#: waits for one of these rather than opening hundreds.
_MAX_CONNECTIONS = 16

#: How soon the subscriber tries again after losing Redis (then doubling).
_FIRST_RESUBSCRIBE = 0.1


def _check_seconds(name: str, value: object, *, at_most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value <= at_most):
        raise ValueError(f"{name} must be above 0 and at most {at_most:g} seconds, got {value!r}")
    return float(value)


class RedisCoordination(Coordination):
    """Shares the token, webhook wake-ups and rate limits through Redis (extra `redis`).

    >>> tl = TransactionLink(ApiKey(key, secret),
    ...                      coordination=RedisCoordination("redis://127.0.0.1:6379/0"))

    Every Redis call gives up after `timeout` seconds; after a failure Redis is left alone
    for a while (up to `max_backoff` seconds), the clients go on with their own token,
    wake-ups and limits, and coordinate again once Redis answers. Clients (of any number of
    processes) that share the URL, the `namespace` and the credentials act as one. One
    instance may serve several clients of one event loop; it closes its connections when
    the last of them closes.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "transactionlink",
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        max_backoff: float = 5.0,
    ) -> None:
        self._url = check_url(url)
        self._keys = Keys(check_namespace(namespace))
        self._timeout = _check_seconds("timeout", timeout, at_most=60)
        longest = _check_seconds("max_backoff", max_backoff, at_most=3600)
        self._policy = BreakerPolicy(first=min(0.5, longest), longest=longest)
        self._resubscribe = BreakerPolicy(first=min(_FIRST_RESUBSCRIBE, longest), longest=longest)
        # Fail here, with the fix, rather than at the first call.
        require_redis()
        require_cryptography()
        self._members: list[_RedisMember] = []
        self._live: _Live | None = None

    @property
    def namespace(self) -> str:
        return self._keys.namespace

    @property
    def connected(self) -> bool:
        """Whether Redis answers and news from other processes reaches this one now."""
        live = self._live
        return live is not None and live.guard.available and live.subscriber.subscribed

    def join(self, wakeups: WakeTarget) -> Member:
        if self._live is None:
            self._live = _Live(self)
        member = _RedisMember(self, self._live, wakeups)
        self._members.append(member)
        return member

    def _targets(self) -> list[WakeTarget]:
        return [member.target for member in self._members]

    async def _leave(self, member: _RedisMember) -> None:
        if member in self._members:
            self._members.remove(member)
        if not self._members and self._live is not None:
            live, self._live = self._live, None
            await live.aclose()

    def __repr__(self) -> str:
        return (
            f"<RedisCoordination {redacted_url(self._url)} namespace={self._keys.namespace!r} "
            f"clients={len(self._members)}>"
        )


class _Live:
    """The connection and tasks of a RedisCoordination while clients use it."""

    def __init__(self, owner: RedisCoordination) -> None:
        keys = owner._keys
        sender = secrets.token_hex(8)
        self.client = connect(owner._url, timeout=owner._timeout, max_connections=_MAX_CONNECTIONS)
        self.guard = Guard(redacted_url(owner._url), timeout=owner._timeout, policy=owner._policy)
        self.budget = RedisRateBudget(
            self.client, self.guard, keys, sender=sender, local=LocalRateBudget()
        )
        self.news = RedisNews(
            self.client, self.guard, keys, sender=sender, markers=Markers(), everyone=owner._targets
        )
        self.subscriber = Subscriber(
            self.client,
            self.guard,
            {keys.finals_channel: self.news.heard, keys.pauses_channel: self.budget.heard},
            on_subscribed=self._subscribed,
            timeout=owner._timeout,
            backoff=owner._resubscribe,
        )
        self._keys = keys
        self._shares: dict[str, TokenShare] = {}
        self._closed = False

    def start(self) -> None:
        """Listen to the other processes from the first use on (needs the running loop)."""
        if not self._closed:
            self.subscriber.start()

    async def _subscribed(self, first: bool) -> None:
        await self.news.recheck(first=first)
        await self.budget.load_pauses()

    def tokens_for(self, key: str, secret: str) -> TokenShare:
        credentials = CredentialKeys(key, secret)
        share = self._shares.get(credentials.name)
        if share is None:
            # A client's first need is its token: from then on it hears the other processes.
            store = RedisTokenStore(
                self.client, self.guard, self._keys, credentials, on_use=self.start
            )
            share = self._shares[credentials.name] = TokenShare(store)
        return share

    async def aclose(self) -> None:
        self._closed = True
        self.guard.close()
        await self.subscriber.aclose()
        await self.budget.aclose()
        await self.news.aclose()
        await self.client.aclose()


class _RedisMember:
    """One client's share of a RedisCoordination."""

    def __init__(self, owner: RedisCoordination, live: _Live, target: WakeTarget) -> None:
        self.target = target
        self._owner = owner
        self._live = live
        self._budget = _StartingBudget(live)
        self._news = _StartingNews(live, MemberNews(live.news, target))
        self._closed = False

    @property
    def budget(self) -> RateBudget:
        return self._budget

    @property
    def news(self) -> WakeNews:
        return self._news

    def tokens_for(self, key: str, secret: str) -> TokenShare:
        return self._live.tokens_for(key, secret)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._owner._leave(self)


class _StartingBudget:
    """The shared budget, starting the subscriber on first use (pauses arrive through it)."""

    def __init__(self, live: _Live) -> None:
        self._live = live

    async def take(self, kind: str, *, per_second: float, burst: float) -> float:
        self._live.start()
        return await self._live.budget.take(kind, per_second=per_second, burst=burst)

    async def pause(self, kind: str, seconds: float) -> None:
        self._live.start()
        await self._live.budget.pause(kind, seconds)

    async def paused_for(self, kind: str) -> float:
        self._live.start()
        return await self._live.budget.paused_for(kind)

    def pause_left(self, kind: str) -> float:
        self._live.start()
        return self._live.budget.pause_left(kind)


class _StartingNews:
    """A client's news, starting the subscriber on first use (wake-ups arrive through it)."""

    def __init__(self, live: _Live, news: MemberNews) -> None:
        self._live = live
        self._news = news

    async def announce(self, execution_id: str, status: str | None) -> None:
        self._live.start()
        await self._news.announce(execution_id, status)

    async def announced(self, execution_id: str) -> bool:
        self._live.start()
        return await self._news.announced(execution_id)
