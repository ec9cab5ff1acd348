"""TransactionLink, the session manager: transport, token and retries; `send` is the one door."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping
from ssl import SSLContext
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

import anyio
import attrs
import yarl

from ._auth import ApiKey, Credentials, OrganizationToken, credentials_from_env, keeper_for
from ._batches.wake import WakeRegistry
from ._download.heap import keep_freed_reads
from ._download.s3_session import S3Session
from ._handle import ClientHandle, Lifecycle
from ._observe.events import Events
from ._observe.hub import Observation
from ._observe.setup import tracer_for
from ._observe.trace import CallTrace, Observer
from ._ratelimit import RateLimit
from ._ratelimit.gate import RateGate
from ._ratelimit.kinds import request_kind
from ._ratelimit.pause import jittered
from ._request import ApiRequest, encode_body, parse_json
from ._retry import (
    Failure,
    GiveUp,
    RetryAfterTooLong,
    RetryIn,
    RetryMode,
    RetryPolicy,
    decide_retry,
    parse_retry_after,
)
from ._session import NoAnswer, SessionSettings, Timeouts
from ._transport import RawResponse, Transport
from ._validate import check_base_url, check_proxy, check_ssl_context
from ._version import __version__
from .coordination import Coordination, LocalCoordination
from .errors import (
    RateLimitError,
    TransportError,
    error_for_status,
)
from .resources import Cases, Parameters, Workflows

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from typing_extensions import Unpack

    from ._webhooks.receive import Webhooks
    from .resources.raw import RawResources

__all__ = ["DEFAULT_BASE_URL", "ClientOptions", "TransactionLink"]

logger = logging.getLogger("transactionlink_async")

DEFAULT_BASE_URL = "https://api.transactionlink.io"


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of `TransactionLink(...)`, as `from_env(**overrides)` takes them."""

    credentials: Credentials
    base_url: str
    retry: RetryPolicy | None
    timeouts: Timeouts | None
    max_connections: int
    user_agent: str | None
    coordination: Coordination | None
    proxy: str | None
    ssl: SSLContext | None
    trust_env: bool
    tracing: bool | TracerProvider
    rate_limit: RateLimit | None


class TransactionLink:
    """An async client of the TransactionLink API; share one per event loop.

    >>> async with TransactionLink(OrganizationToken("tot_...")) as tl:
    ...     execution = await tl.workflows.get(execution_id)
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        user_agent: str | None = None,
        coordination: Coordination | None = None,
        proxy: str | None = None,
        ssl: SSLContext | None = None,
        trust_env: bool = True,
        tracing: bool | TracerProvider = False,
        rate_limit: RateLimit | None = None,
    ) -> None:
        if not isinstance(credentials, (OrganizationToken, ApiKey)):
            raise TypeError(
                "credentials must be OrganizationToken('tot_...') or ApiKey(key, secret), "
                f"got {type(credentials).__name__}"
            )
        _check_retry(retry)
        _check_timeouts(timeouts)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError("max_connections must be an int")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(
                f"rate_limit must be a RateLimit(per_second, burst=...), "
                f"got {type(rate_limit).__name__}"
            )
        if user_agent is not None and (
            not isinstance(user_agent, str)
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in user_agent)
        ):
            raise ValueError("user_agent must be a str without control characters")
        if coordination is not None and not isinstance(coordination, Coordination):
            raise TypeError(
                "coordination must be a Coordination such as RedisCoordination(url), "
                f"got {type(coordination).__name__}"
            )
        if not isinstance(trust_env, bool):
            raise TypeError(f"trust_env must be a bool, got {type(trust_env).__name__}")

        self._base_url = check_base_url(base_url)
        self._base_text = str(self._base_url)
        agent = f"transactionlink-async/{__version__}"
        settings = SessionSettings(
            max_connections=max_connections,
            user_agent=f"{user_agent} {agent}" if user_agent else agent,
            timeouts=timeouts or Timeouts(),
            proxy=check_proxy(proxy),
            ssl=check_ssl_context(ssl),
            trust_env=trust_env,
        )
        self._settings = settings
        self._transport = Transport(settings)
        wakeups = WakeRegistry()
        self._wakeups = wakeups
        # Clients sharing a backend (in other processes too) share its token, news and pacing.
        self._coordination = coordination or LocalCoordination()
        member = self._coordination.join(wakeups)
        self._member = member
        share = (
            member.tokens_for(credentials.key, credentials.secret)
            if isinstance(credentials, ApiKey)
            else None
        )
        self._keeper = keeper_for(credentials, self._call_auth, share=share)
        self._observation = Observation(tracer_for(tracing))
        self._storage = S3Session(settings, observation=self._observation)
        self._root_lifecycle = Lifecycle()
        self._root_lifecycle.on_close(member.aclose)
        self._root_lifecycle.on_close(self._storage.aclose)
        self._parent: TransactionLink | None = None
        # One pause, one learned pace and one RateLimit for the whole client (and through
        # the coordination backend's budget, for every client sharing it).
        self._gate = RateGate(
            member.budget,
            rate_limit,
            max_pause=(retry or RetryPolicy()).max_retry_after,
            default_pause=(retry or RetryPolicy()).backoff_base,
        )
        self._rate_limit = rate_limit
        self._bind(self._root_lifecycle, retry or RetryPolicy(), settings.timeouts)
        keep_freed_reads()
        # Shared with every view (the list is, through copy.copy): one key cache, one set
        # of wake-ups. Made at first use: signature checks load code a caller that never
        # receives a delivery does not need.
        self._webhooks: list[Webhooks] = []
        self._webhooks_handle = self._handle

    def _bind(self, lifecycle: Lifecycle, retry: RetryPolicy, timeouts: Timeouts) -> None:
        """Set what a client and each of its views hold for themselves."""
        self._lifecycle = lifecycle
        self._retry = retry
        self._timing = self._transport.timing(timeouts)
        self._handle = handle = ClientHandle(
            send=self.send,
            retry_policy=retry,
            session_settings=attrs.evolve(self._settings, timeouts=timeouts),
            wakeups=self._wakeups,
            news=self._member.news,
            rate_budget=self._member.budget,
            lifecycle=lifecycle,
            storage=self._storage.with_timeouts(timeouts),
            observation=self._observation,
            current_rate=self._current_rate,
        )
        self.cases: Cases = Cases(handle)
        self.parameters: Parameters = Parameters(handle)
        self.workflows: Workflows = Workflows(handle)
        self._raw: RawResources | None = None

    def with_options(
        self, *, retry: RetryPolicy | None = None, timeouts: Timeouts | None = None
    ) -> TransactionLink:
        """A view of this client that overrides only what it names.

        It shares the connection pools, the token, the coordination, the webhooks and
        the event hooks of this client. Closing the view closes nothing but the view;
        closing this client closes its views.

        >>> patient = tl.with_options(timeouts=Timeouts(read=120.0))
        >>> await patient.workflows.download_result(execution_id, "result.json")
        """
        self._check_open()
        _check_retry(retry)
        _check_timeouts(timeouts)
        # Everything the client holds is shared (pools, token, limits, coordination),
        # then the view rebinds its own retry policy, timeouts, lifecycle and resources.
        view = copy.copy(self)
        view._parent = self
        view._bind(
            Lifecycle(parent=self._lifecycle),
            retry or self._retry,
            timeouts or self._handle.session_settings.timeouts,
        )
        return view

    @property
    def with_raw_response(self) -> RawResources:
        """The resource calls, returning an `APIResponse` (status, headers, parsed model).

        >>> answer = await tl.with_raw_response.workflows.get(execution_id)
        >>> answer.headers.get("X-Request-Id"), answer.parsed.status
        """
        if self._raw is None:
            from .resources.raw import RawResources

            self._raw = RawResources(self.cases, self.parameters, self.workflows)
        return self._raw

    @property
    def events(self) -> Events:
        """Request and answer hooks: `tl.events.on_response(hook)` (shared with views)."""
        return self._observation.events

    @classmethod
    def from_env(cls, **overrides: Unpack[ClientOptions]) -> TransactionLink:
        """A client configured from `TRANSACTIONLINK_*` environment variables.

        Any argument of `TransactionLink(...)` may be given to override or complete them.
        `TRANSACTIONLINK_REDIS_URL`, when set, gives it a RedisCoordination on that URL.
        """
        if "credentials" not in overrides:
            overrides["credentials"] = credentials_from_env(os.environ)
        base_url = os.environ.get("TRANSACTIONLINK_BASE_URL")
        if base_url and "base_url" not in overrides:
            overrides["base_url"] = base_url
        redis_url = os.environ.get("TRANSACTIONLINK_REDIS_URL")
        if redis_url and "coordination" not in overrides:
            # Every worker process started with the same environment then acts as one.
            from .coordination import RedisCoordination

            overrides["coordination"] = RedisCoordination(redis_url)
        return cls(**overrides)

    def __repr__(self) -> str:
        state = "closed" if self._lifecycle.closed else "open"
        return f"<TransactionLink {self._base_url} {state}>"

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._rate_limit

    @property
    def webhooks(self) -> Webhooks:
        """Verify signed deliveries and let them end `wait_for_completion` early."""
        if not self._webhooks:
            from ._webhooks.receive import Webhooks

            self._webhooks.append(Webhooks(self._webhooks_handle))
        return self._webhooks[0]

    @webhooks.setter
    def webhooks(self, webhooks: Webhooks) -> None:
        # For tests that put their own in place: this client and its views then use it.
        self._webhooks[:] = [webhooks]

    @property
    def coordination(self) -> Coordination:
        """The backend this client shares its token, news and pacing through."""
        return self._coordination

    @property
    def closed(self) -> bool:
        return self._lifecycle.closed

    async def __aenter__(self) -> TransactionLink:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection the client holds (its share of a coordination backend
        too); later calls raise ClientClosedError.

        On a view (see `with_options`) this closes the view only.
        """
        if self._lifecycle.closed:
            return
        if self._parent is not None:
            await self._lifecycle.close()
            return
        # Shielded: a cancelled shutdown must still release sockets.
        self._gate.close()
        try:
            with anyio.CancelScope(shield=True):
                try:
                    await self._lifecycle.close()
                finally:
                    # A closer that failed must not leave the connections open.
                    await self._transport.aclose()
        finally:
            self._lifecycle.end_own_calls()

    def _current_rate(self, method: str, path: str) -> float | None:
        return self._gate.current_rate(request_kind(method, path))

    def _check_open(self) -> None:
        self._lifecycle.check_open()

    def url_for(self, path: str) -> yarl.URL:
        # Paths are built from checked segments only, so they are already in their final form.
        return yarl.URL(self._base_text + path, encoded=True)

    async def send(self, request: ApiRequest) -> RawResponse:
        """Send an API request: credentials, the 401 rule, retries; raise on error answers.

        Closing the client ends it at once, even mid-answer, with ClientClosedError.
        """
        # None unless a hook is subscribed or tracing is on: then the call is told all.
        observer = self._observation.current
        with self._lifecycle.in_flight():
            if observer is None:
                return await self._send(request, None)
            return await self._send_observed(request, observer)

    async def _send_observed(self, request: ApiRequest, observer: Observer) -> RawResponse:
        call = observer.call(request.method, self.url_for(request.path), target="api")
        try:
            response = await self._send(request, call)
        except BaseException as exc:
            call.end(exc)
            raise
        call.end(None)
        return response

    async def _send(self, request: ApiRequest, call: CallTrace | None) -> RawResponse:
        body = encode_body(request) if request.has_body else None
        headers = {"Accept": request.accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = self.url_for(request.path)
        kind = request_kind(request.method, request.path)
        attempt = 0
        replayed_after_401 = False
        while True:
            self._check_open()  # also between attempts: aclose() may have run meanwhile
            held = None
            if request.authenticated:
                # The token first (an authorize, or a renewal when one is due): a turn of
                # the rate limit must never wait for it, or every turn handed out
                # meanwhile would go out together the moment it ends (a burst of 429s).
                held = self._keeper.ready() or await self._keeper.authorization()
            if self._gate.clear(kind):
                sent_at = time.monotonic()
            else:
                sent_at = await self._gate.before_send(kind, request.method, url)
                self._check_open()  # the wait may have outlived the client
                if held is not None:
                    # Sent with the token at hand, even if its renewal fell due during the
                    # wait (it is still valid; the next call renews); only an expired one
                    # is waited for.
                    held = self._keeper.at_hand() or await self._keeper.authorization()
            self._check_open()  # so may the token's renewal
            attempt += 1
            generation = 0
            if held is not None:
                headers["Authorization"], generation = held
            if call is not None:
                call.attempt(attempt)
            try:
                response = await self._transport.request(
                    request.method,
                    url,
                    headers=headers,
                    body=body,
                    max_body=request.max_body,
                    timing=self._timing,
                )
            except NoAnswer as exc:
                logger.debug(
                    "%s %s: no answer (%s), attempt %d", request.method, request.path, exc, attempt
                )
                if call is not None:
                    call.failed(str(exc))
                decision = decide_retry(
                    self._retry, mode=request.mode, attempt=attempt, failure=exc.failure
                )
                if not isinstance(decision, RetryIn):
                    raise _transport_error(request, exc, decision) from exc
            else:
                logger.debug(
                    "%s %s -> %d, attempt %d",
                    request.method,
                    request.path,
                    response.status,
                    attempt,
                )
                if call is not None:
                    call.answered(response.status, response.headers)
                if response.status < 400:
                    self._gate.accepted(kind)
                    return response
                if (
                    response.status == 401
                    and request.authenticated
                    and not replayed_after_401
                    and await self._keeper.renew_after_401(generation)
                ):
                    # Refused credentials did nothing on the server: one replay is always safe.
                    replayed_after_401 = True
                    attempt -= 1
                    if call is not None:
                        call.renewed()
                    continue
                paused = await self._gate.answered(
                    kind,
                    response.status,
                    parse_retry_after(response.headers.get("Retry-After"), now=time.time())
                    if response.status in (429, 503)
                    else None,
                    sent_at=sent_at,
                )
                decision = decide_retry(
                    self._retry,
                    mode=request.mode,
                    attempt=attempt,
                    status=response.status,
                    headers=response.headers,
                    now=time.time(),
                )
                if not isinstance(decision, RetryIn):
                    raise _status_error(request, str(url), response, decision)
                if paused:
                    # Those refused together must not come back together: never sooner,
                    # sometimes a little later.
                    decision = RetryIn(jittered(decision.delay))
            logger.debug("%s %s: retrying in %.2fs", request.method, request.path, decision.delay)
            if call is not None:
                call.retrying(decision.delay)
            await self._gate.sleep(decision.delay)

    async def send_json(self, request: ApiRequest) -> Any:
        """Send, and parse the answer's JSON body (None for an empty body)."""
        response = await self.send(request)
        return parse_json(response.body, request)

    async def _call_auth(self, path: str, payload: Mapping[str, Any]) -> Any:
        return await self.send_json(
            ApiRequest(
                method="POST", path=path, json=dict(payload), authenticated=False, secret=True
            )
        )


def _check_retry(retry: object) -> None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")


def _check_timeouts(timeouts: object) -> None:
    if timeouts is not None and not isinstance(timeouts, Timeouts):
        raise TypeError(f"timeouts must be a Timeouts, got {type(timeouts).__name__}")


def _transport_error(
    request: ApiRequest, exc: NoAnswer, decision: GiveUp | RetryAfterTooLong
) -> TransportError:
    sent = exc.failure is not Failure.NOT_SENT
    message = f"{request.method} {request.path}: {exc}"
    if isinstance(decision, GiveUp):
        message += f" ({decision.reason})"
    if sent and request.mode is RetryMode.CREATING:
        message += (
            "; it may have been carried out: check before sending it again "
            "(e.g. look the execution up) to avoid a duplicate"
        )
    return TransportError(message, request_sent=sent)


def _status_error(
    request: ApiRequest,
    url: str,
    response: RawResponse,
    decision: GiveUp | RetryAfterTooLong,
) -> Exception:
    retry_after = (
        decision.retry_after
        if isinstance(decision, RetryAfterTooLong)
        else parse_retry_after(response.headers.get("Retry-After"), now=time.time())
    )
    error = error_for_status(
        status=response.status,
        method=request.method,
        url=url,
        body=response.body,
        retry_after=retry_after,
        secrets=_sent_values(request) if request.secret else None,
    )
    if isinstance(error, RateLimitError) and isinstance(decision, RetryAfterTooLong):
        error.args = (f"{error.args[0]}; the API asks to wait {decision.retry_after:.0f}s",)
    return error


def _sent_values(request: ApiRequest) -> list[str]:
    """The string values of a request's JSON object body (an auth call's key, secret...)."""
    body = request.json
    if not isinstance(body, Mapping):
        return []
    return [value for value in body.values() if isinstance(value, str)]
