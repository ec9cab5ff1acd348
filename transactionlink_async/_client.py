"""TransactionLink, the session manager: transport, token and retries; `send` is the one door."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import anyio
import yarl

from ._auth import ApiKey, Credentials, OrganizationToken, keeper_for
from ._batches.wake import WakeRegistry
from ._handle import ClientHandle, Lifecycle
from ._ratelimit import LocalRateBudget, RateLimit
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
from ._validate import check_base_url
from ._version import __version__
from ._webhooks.receive import Webhooks
from .errors import (
    RateLimitError,
    TransportError,
    error_for_status,
)
from .resources import Cases, Parameters, Workflows

__all__ = ["DEFAULT_BASE_URL", "TransactionLink"]

logger = logging.getLogger("transactionlink_async")

DEFAULT_BASE_URL = "https://api.transactionlink.io"


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
        rate_limit: RateLimit | None = None,
    ) -> None:
        if not isinstance(credentials, (OrganizationToken, ApiKey)):
            raise TypeError(
                "credentials must be OrganizationToken('tot_...') or ApiKey(key, secret), "
                f"got {type(credentials).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            raise TypeError(f"timeouts must be a Timeouts, got {type(timeouts).__name__}")
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

        self._base_url = check_base_url(base_url)
        self._base_text = str(self._base_url)
        self._retry = retry or RetryPolicy()
        agent = f"transactionlink-async/{__version__}"
        settings = SessionSettings(
            max_connections=max_connections,
            user_agent=f"{user_agent} {agent}" if user_agent else agent,
            timeouts=timeouts or Timeouts(),
        )
        self._transport = Transport(settings)
        self._keeper = keeper_for(credentials, self._call_auth)
        self._lifecycle = Lifecycle()
        # One pause and one budget for the whole client (see _ratelimit.kinds).
        self._gate = RateGate(
            LocalRateBudget(),
            rate_limit,
            max_pause=self._retry.max_retry_after,
            default_pause=self._retry.backoff_base,
        )
        self._rate_limit = rate_limit
        self._handle = handle = ClientHandle(
            send=self.send,
            retry_policy=self._retry,
            session_settings=settings,
            wakeups=WakeRegistry(),
            lifecycle=self._lifecycle,
            current_rate=self._gate.current_rate,
        )
        self.cases: Cases = Cases(handle)
        self.parameters: Parameters = Parameters(handle)
        self.workflows: Workflows = Workflows(handle)
        self.webhooks: Webhooks = Webhooks(handle)

    @classmethod
    def from_env(cls, **overrides: Any) -> TransactionLink:
        """A client configured from `TRANSACTIONLINK_*` environment variables."""
        if "credentials" not in overrides:
            token = os.environ.get("TRANSACTIONLINK_TOKEN")
            key = os.environ.get("TRANSACTIONLINK_API_KEY")
            secret = os.environ.get("TRANSACTIONLINK_API_SECRET")
            if token:
                overrides["credentials"] = OrganizationToken(token)
            elif key and secret:
                overrides["credentials"] = ApiKey(key, secret)
            else:
                raise ValueError(
                    "set TRANSACTIONLINK_TOKEN (an organization token, tot_...) or both "
                    "TRANSACTIONLINK_API_KEY and TRANSACTIONLINK_API_SECRET"
                )
        base_url = os.environ.get("TRANSACTIONLINK_BASE_URL")
        if base_url and "base_url" not in overrides:
            overrides["base_url"] = base_url
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
        """Close every connection the client holds; later calls raise ClientClosedError."""
        if self._lifecycle.closed:
            return
        # Shielded: a cancelled shutdown must still release sockets.
        self._gate.close()
        with anyio.CancelScope(shield=True):
            await self._lifecycle.close()
            await self._transport.aclose()

    def _check_open(self) -> None:
        self._lifecycle.check_open()

    def url_for(self, path: str) -> yarl.URL:
        # Paths are built from checked segments only, so they are already in their final form.
        return yarl.URL(self._base_text + path, encoded=True)

    async def send(self, request: ApiRequest) -> RawResponse:
        """Send an API request: credentials, the 401 rule, retries; raise on error answers."""
        self._check_open()
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
            sent_at = await self._gate.before_send(kind, request.method, url)
            self._check_open()  # the wait may have outlived the client
            attempt += 1
            generation = 0
            if request.authenticated:
                headers["Authorization"], generation = await self._keeper.authorization()
            try:
                response = await self._transport.request(
                    request.method, url, headers=headers, body=body, max_body=request.max_body
                )
            except NoAnswer as exc:
                logger.debug(
                    "%s %s: no answer (%s), attempt %d", request.method, request.path, exc, attempt
                )
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
                if request.on_answer is not None:
                    request.on_answer(response.status, response.headers)
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
            await self._gate.sleep(decision.delay)

    async def send_json(self, request: ApiRequest) -> Any:
        """Send, and parse the answer's JSON body (None for an empty body)."""
        response = await self.send(request)
        return parse_json(response.body, request)

    async def _call_auth(self, path: str, payload: Mapping[str, Any]) -> Any:
        return await self.send_json(
            ApiRequest(method="POST", path=path, json=dict(payload), authenticated=False)
        )


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
    )
    if isinstance(error, RateLimitError) and isinstance(decision, RetryAfterTooLong):
        error.args = (f"{error.args[0]}; the API asks to wait {decision.retry_after:.0f}s",)
    return error
