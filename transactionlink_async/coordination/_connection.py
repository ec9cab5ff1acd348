"""Opening redis-py's asyncio client: the optional import, short timeouts, one clear error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: Coordination must never hold an API call up for long: a Redis that does not answer within
#: this many seconds counts as down, and the caller goes on with local behaviour.
DEFAULT_REDIS_TIMEOUT = 0.25


def require_redis() -> Any:
    """The `redis.asyncio` module, or an ImportError that says which extra to install."""
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:  # pragma: no cover - the test extra installs redis
        raise ImportError(
            "coordinating through Redis needs redis-py: pip install 'transactionlink-async[redis]'"
        ) from exc
    return redis_asyncio


def check_url(url: object) -> str:
    """A Redis URL, or a ValueError showing what one looks like."""
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "the Redis URL must start with redis://, rediss:// or unix://, "
            "e.g. redis://127.0.0.1:6379/0"
        )
    return url


def connect(
    url: str, *, timeout: float = DEFAULT_REDIS_TIMEOUT, max_connections: int | None = None
) -> Redis:
    """A lazily connecting client for `url` whose every call gives up after `timeout` seconds.

    With `max_connections`, callers beyond that many wait (up to `timeout`) for a free
    connection instead of opening more.
    """
    check_url(url)
    redis_asyncio = require_redis()
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # Our own circuit breaker decides when to try again; redis-py retrying inside one
        # call would stretch a short timeout into a long stall.
        "retry_on_timeout": False,
        "health_check_interval": 0,
        "decode_responses": False,
    }
    if max_connections is None:
        client: Redis = redis_asyncio.Redis.from_url(url, **options)
        return client
    pool = redis_asyncio.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, **options
    )
    bounded: Redis = redis_asyncio.Redis.from_pool(pool)
    return bounded


def redacted_url(url: str) -> str:
    """`url` without its password, for log lines and reprs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user + ':***@' if user else '***@'}{host}"
