"""TransactionLink, the session manager: transport, token and retries; `send` is the one door."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import anyio
import attrs
import yarl

from ._auth import ApiKey, Credentials, OrganizationToken, keeper_for
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
from ._transport import NoAnswer, RawResponse, Timeouts, Transport
from ._validate import check_base_url
from ._version import __version__
from ._wake import WakeRegistry
from .errors import (
    ClientClosedError,
    InvalidResponseError,
    RateLimitError,
    TransportError,
    error_for_status,
)

__all__ = ["DEFAULT_BASE_URL", "AnswerObserver", "ApiRequest", "TransactionLink"]

logger = logging.getLogger("transactionlink_async")

DEFAULT_BASE_URL = "https://api.transactionlink.io"

_NO_BODY = object()

#: Told the status and headers of every HTTP answer a request gets, retried attempts included.
AnswerObserver = Callable[[int, Mapping[str, str]], None]


@attrs.frozen(kw_only=True)
class ApiRequest:
    """What a resource method asks the client to send."""

    method: str
    path: str
    json: Any = _NO_BODY
    mode: RetryMode = RetryMode.IDEMPOTENT
    authenticated: bool = True
    accept: str = "application/json"
    #: Refuse answers with a larger body (BodyTooLarge) instead of holding them.
    max_body: int | None = None
    #: Sees every answer, even those `send` retries on its own (e.g. a 429 it sleeps through),
    #: so a caller can adapt its pace to the server's signals.
    on_answer: AnswerObserver | None = attrs.field(default=None, eq=False)


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
        if user_agent is not None and (
            not isinstance(user_agent, str)
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in user_agent)
        ):
            raise ValueError("user_agent must be a str without control characters")

        self._base_url = check_base_url(base_url)
        self._base_text = str(self._base_url)
        self._retry = retry or RetryPolicy()
        agent = f"transactionlink-async/{__version__}"
        self._transport = Transport(
            max_connections=max_connections,
            timeouts=timeouts or Timeouts(),
            user_agent=f"{user_agent} {agent}" if user_agent else agent,
        )
        self._keeper = keeper_for(credentials, self._call_auth)
        self._closed = False
        #: Closed with the client, newest first (other sessions, e.g. for result downloads).
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        #: Lets a webhook end a `wait_for_completion` sleep early.
        self._wake = WakeRegistry()

        from .resources import Cases, Parameters, Workflows

        self.cases = Cases(self)
        self.parameters = Parameters(self)
        self.workflows = Workflows(self)

        from .webhooks import Webhooks

        self.webhooks = Webhooks(self)

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
        state = "closed" if self._closed else "open"
        return f"<TransactionLink {self._base_url} {state}>"

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    @property
    def closed(self) -> bool:
        return self._closed

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
        if self._closed:
            return
        self._closed = True
        # Shielded: a cancelled shutdown must still release sockets.
        with anyio.CancelScope(shield=True):
            for close in reversed(self._on_close):
                await close()
            self._on_close.clear()
            await self._transport.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this TransactionLink client is closed; create a new one")

    def url_for(self, path: str) -> yarl.URL:
        # Paths are built from checked segments only, so they are already in their final form.
        return yarl.URL(self._base_text + path, encoded=True)

    async def send(self, request: ApiRequest) -> RawResponse:
        """Send an API request: credentials, the 401 rule, retries; raise on error answers."""
        self._check_open()
        body = None if request.json is _NO_BODY else _encode_body(request)
        headers = {"Accept": request.accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = self.url_for(request.path)
        attempt = 0
        replayed_after_401 = False
        while True:
            self._check_open()  # also between attempts: aclose() may have run meanwhile
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
            logger.debug("%s %s: retrying in %.2fs", request.method, request.path, decision.delay)
            await anyio.sleep(decision.delay)

    async def send_json(self, request: ApiRequest) -> Any:
        """Send, and parse the answer's JSON body (None for an empty body)."""
        response = await self.send(request)
        return parse_json(response.body, request)

    async def _call_auth(self, path: str, payload: Mapping[str, Any]) -> Any:
        return await self.send_json(
            ApiRequest(method="POST", path=path, json=dict(payload), authenticated=False)
        )


def _encode_body(request: ApiRequest) -> bytes:
    """The request's JSON, or a clear error before anything is sent."""
    try:
        # NaN and Infinity are not JSON: the API would refuse them, so refuse them here.
        return json.dumps(request.json, allow_nan=False).encode()
    except ValueError as exc:
        raise ValueError(
            f"{request.method} {request.path}: the body is not valid JSON: {exc}"
        ) from None
    except TypeError as exc:
        raise TypeError(
            f"{request.method} {request.path}: the body is not JSON-serialisable: {exc}"
        ) from None


def parse_json(body: bytes, request: ApiRequest) -> Any:
    """The answer's JSON, or InvalidResponseError saying which call answered what."""
    if not body or body.isspace():
        return None
    try:
        if body[:1] == b"{" and body[1:2] != b"\x00":
            # What json.loads(bytes) would do after sniffing the encoding (a first byte
            # "{" without a NUL after it is UTF-8), minus the sniffing.
            return json.loads(body.decode("utf-8", "surrogatepass"))
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidResponseError(
            f"{request.method} {request.path} answered with a body that is not JSON"
        ) from exc


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
