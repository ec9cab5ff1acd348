"""The one aiohttp session factory (API and downloads), its settings, and aiohttp errors mapped."""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from typing import Any

import aiohttp
import attrs
import yarl

from ._deadline import watchdog_supported
from ._retry import Failure
from ._validate import check_number
from .errors import ClientClosedError

__all__ = [
    "EnvironmentProxies",
    "LazySession",
    "NoAnswer",
    "SessionSettings",
    "Timeouts",
    "bypasses_proxy",
    "describe",
    "no_answer",
    "read_at_most",
]


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None:
        # Infinity is refused too (aiohttp's timers overflow on it): None means no limit.
        check_number(f"Timeouts.{attribute.name} (None for no limit)", value, above=0)


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-attempt limits of API calls, in seconds (None: no limit)."""

    #: Opening a connection, including waiting for a free one in the pool.
    connect: float | None = attrs.field(default=10.0, validator=_optional_positive)
    #: Idle time between bytes of an answer (the first byte may take `connect` longer
    #: when the connection was ready at once).
    read: float | None = attrs.field(default=30.0, validator=_optional_positive)
    #: One attempt of one API call, start to finish.
    total: float | None = attrs.field(default=60.0, validator=_optional_positive)

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.total, connect=self.connect, sock_read=self.read)

    def watched(self) -> bool:
        """Whether the transport's watchdog can enforce `total` and `read` for aiohttp.

        Without a connect limit the first byte's wait could not be bounded apart from the
        pool wait: aiohttp's own timers keep `read` exact then.
        """
        return watchdog_supported and (self.read is None or self.connect is not None)


@attrs.frozen(kw_only=True)
class SessionSettings:
    """What every session of one client shares: pool, User-Agent, time limits and network."""

    max_connections: int
    user_agent: str
    timeouts: Timeouts
    #: Every request goes through this HTTP(S) proxy (None: see `trust_env`).
    proxy: yarl.URL | None = attrs.field(default=None, repr=False)
    #: Certificates trusted for HTTPS (None: the system's default store).
    ssl: ssl.SSLContext | None = attrs.field(default=None, repr=False)
    #: Read HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as requests and httpx do (once, when the
    #: session is made); an explicit `proxy` wins.
    trust_env: bool = True


class NoAnswer(Exception):
    """An attempt ended without an HTTP answer; `failure` says whether it may have arrived."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure


def describe(exc: BaseException) -> str:
    """A short description of a transport failure, free of URLs and headers."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            "the server's TLS certificate is not trusted "
            "(pass ssl=an SSLContext that trusts its CA, e.g. a corporate CA bundle)"
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return "could not connect to the proxy"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"the proxy refused the connection (HTTP {exc.status})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"could not connect: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer's body broke off"
    return type(exc).__name__


def no_answer(exc: aiohttp.ClientError | asyncio.TimeoutError) -> NoAnswer:
    """The NoAnswer for an aiohttp failure: NOT_SENT only when no connection was opened."""
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        # The connection was never opened: the request provably did not leave.
        return NoAnswer(Failure.NOT_SENT, describe(exc))
    return NoAnswer(Failure.NO_ANSWER, describe(exc))


def bypasses_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY (`example.com,.internal,10.0.0.1,host:8443,*`) names this host."""
    host = host.lower().strip("[]")
    for entry in no_proxy.lower().replace(" ", "").split(","):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").strip("[]")
        if host == name or host.endswith("." + name):
            return True
    return False


class EnvironmentProxies:
    """The proxy the environment names for each origin (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).

    Read once: aiohttp's own `trust_env` reads the environment and ~/.netrc in a worker
    thread for every request (two thread hops per call), and would add a netrc
    Authorization header, which the storage must never get.
    """

    _CACHE_LIMIT = 256

    def __init__(self, proxies: dict[str, str]) -> None:
        self._proxies = proxies
        self._chosen: dict[tuple[str, str, int | None], yarl.URL | None] = {}

    @classmethod
    def from_environment(cls) -> EnvironmentProxies | None:
        """The environment's proxies, or None when it names none."""
        proxies = urllib.request.getproxies_environment()
        if not any(scheme in proxies for scheme in ("http", "https", "all")):
            return None
        return cls(proxies)

    def for_url(self, url: yarl.URL) -> yarl.URL | None:
        key = (url.scheme, url.raw_host or "", url.port)
        try:
            return self._chosen[key]
        except KeyError:
            pass
        chosen = self._choose(url)
        if len(self._chosen) >= self._CACHE_LIMIT:
            self._chosen.clear()
        self._chosen[key] = chosen
        return chosen

    def _choose(self, url: yarl.URL) -> yarl.URL | None:
        if bypasses_proxy(url.raw_host or "", url.port, self._proxies.get("no", "")):
            return None
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy:
            return None
        try:
            chosen = yarl.URL(proxy if "://" in proxy else f"http://{proxy}")
        except (ValueError, TypeError):
            return None
        return chosen if chosen.scheme in ("http", "https") and chosen.host else None


async def read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """A body read to its end or to `limit` bytes, whichever comes first.

    One `content.read(limit)` returns only what has arrived so far: an error body sent in
    two pieces (or chunked) would lose its second half, and with it the details.
    """
    parts: list[bytes] = []
    held = 0
    while held < limit:
        part = await content.read(limit - held)
        if not part:
            break
        parts.append(part)
        held += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class LazySession:
    """One aiohttp ClientSession, made inside the running loop at first use and kept to it.

    It carries no credentials (they go on each request, so nothing can leak to another
    host), no cookies, and never resends a request on its own.
    """

    def __init__(
        self,
        settings: SessionSettings,
        *,
        timeout: aiohttp.ClientTimeout,
        **options: Any,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._options = options
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        #: The environment's proxies (None when there are none, or `proxy` is explicit).
        self.environment_proxies: EnvironmentProxies | None = None

    @property
    def settings(self) -> SessionSettings:
        return self._settings

    def get(self) -> aiohttp.ClientSession:
        """The session, made now if need be; ClientClosedError once closed."""
        if self._closed:
            # A call still running when the client closed must not open a new session.
            raise ClientClosedError("this TransactionLink client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._session is None:
            settings = self._settings
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=settings.max_connections,
                    limit_per_host=0,
                    ssl=True if settings.ssl is None else settings.ssl,
                ),
                timeout=self._timeout,
                headers={"User-Agent": settings.user_agent},
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                proxy=settings.proxy,
                # Never aiohttp's: see EnvironmentProxies.
                trust_env=False,
                **self._options,
            )
            if settings.trust_env and settings.proxy is None:
                self.environment_proxies = EnvironmentProxies.from_environment()
            disable_hidden_resend(session)
            self._session = session
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this TransactionLink client was first used in another event loop; "
                "create one client per loop"
            )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def disable_hidden_resend(session: aiohttp.ClientSession) -> None:
    """Stop aiohttp from resending an idempotent request once on a dropped keep-alive.

    Our RetryPolicy (and a download's attempt count) must own every attempt. aiohttp has
    no public switch for it; the suite fails if this private attribute disappears.
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
