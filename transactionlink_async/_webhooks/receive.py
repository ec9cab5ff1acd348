"""Receiving webhook deliveries: signature checks, events, wake-ups, and the receiver answers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._handle import ClientHandle
from .._lograte import RateLimitedLog
from .._request import ApiRequest
from .._transport import BodyTooLarge
from ..errors import (
    ClientClosedError,
    InvalidResponseError,
    NotFoundError,
    WebhookKeyUnavailableError,
    WebhookVerificationError,
)
from ..models import UnknownStatus, WorkflowStatus, status_from_text
from .jws import load_rsa_public_key, parse_detached_jws, require_cryptography, rs256_verify
from .keys import KeyCache

if TYPE_CHECKING:
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from starlette.requests import Request
    from starlette.responses import Response

    from .._client import TransactionLink

__all__ = [
    "DEFAULT_MAX_BODY",
    "SIGNATURE_HEADER",
    "WebhookEvent",
    "Webhooks",
    "aiohttp_handler",
    "event_from_body",
    "receive",
    "signature_header",
    "starlette_endpoint",
]

logger = logging.getLogger("transactionlink_async.webhooks")

SIGNATURE_HEADER = "JWS-SIGNATURE"
#: Larger bodies are refused before anything is checked (413 from the receivers); a
#: `max_body` argument sets another limit.
DEFAULT_MAX_BODY = 1024 * 1024
# A key answer is a few hundred bytes of PEM; anything far bigger is not a key.
_MAX_KEY_BYTES = 64 * 1024

# Where the execution id may be (api-facts.md, "Webhooks"): these names at the top level
# first, then inside one nested object; `id` last, and nested only where it clearly
# names the execution, so that an event's own id cannot shadow the execution's.
_ID_KEYS = ("workflowId", "workflowExecutionId", "executionId")
_NESTED = ("data", "workflow", "workflowExecution", "execution")
_NESTED_WITH_OWN_ID = ("workflow", "workflowExecution", "execution")

Headers = Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[str | bytes, str | bytes]]


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified webhook delivery.

    `execution_id` is None when the payload names no execution the SDK recognises;
    `status` is a `WorkflowStatus`, the raw string for a status the SDK does not know,
    or None; `payload` is the whole JSON object as sent.
    """

    execution_id: str | None
    status: WorkflowStatus | UnknownStatus | None
    payload: Mapping[str, Any] = attrs.field(hash=False, repr=False)
    reference_name: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _find_execution(payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The execution id, and the object it was found in (the payload when none was)."""
    # json.loads makes plain dicts: `dict` checks are exact here, and cheaper than Mapping.
    nested = [payload[name] for name in _NESTED if isinstance(payload.get(name), dict)]
    for key in _ID_KEYS:
        for where in (payload, *nested):
            found = _text(where.get(key))
            if found:
                return found, where
    found = _text(payload.get("id"))
    if found:
        return found, payload
    for name in _NESTED_WITH_OWN_ID:
        inner = payload.get(name)
        if isinstance(inner, dict):
            found = _text(inner.get("id"))
            if found:
                return found, inner
    return None, payload


def event_from_body(body: bytes) -> WebhookEvent:
    """The event in a verified body; WebhookVerificationError when it is not a JSON object."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookVerificationError("webhook rejected: the signed body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("webhook rejected: the signed body is not a JSON object")
    execution_id, where = _find_execution(payload)
    # The status of the execution sits beside its id; the top level speaks for it when
    # that object has none.
    status = _text(where.get("status")) or _text(payload.get("status"))
    return WebhookEvent(
        execution_id=execution_id,
        status=None if status is None else status_from_text(status),
        payload=payload,
        reference_name=_text(payload.get("referenceName")),
    )


def _latin1(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return None


def signature_header(headers: Headers) -> str:
    """The one `JWS-SIGNATURE` value, whatever the header container; names match in any case."""
    if isinstance(headers, Mapping):
        pairs: Iterable[Any] = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        pairs = headers
    else:
        raise TypeError(
            f"headers must be a mapping or a list of (name, value) pairs, "
            f"got {type(headers).__name__}"
        )
    found: list[str | None] = []
    for name, value in pairs:
        text = _latin1(name)
        if text is not None and text.lower() == "jws-signature":
            found.append(_latin1(value))
    if not found:
        raise WebhookVerificationError(f"webhook rejected: no {SIGNATURE_HEADER} header")
    if len(found) > 1:
        raise WebhookVerificationError(
            f"webhook rejected: {len(found)} {SIGNATURE_HEADER} headers; expected one"
        )
    value = found[0]
    if value is None:
        raise WebhookVerificationError(f"webhook rejected: {SIGNATURE_HEADER} is not text")
    return value


def check_max_body(max_body: object) -> None:
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be a positive int, got {max_body!r}")


def _as_bytes(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        f"body must be the raw request bytes exactly as received, got {type(body).__name__}"
    )


class Webhooks:
    """`tl.webhooks`: verify signed deliveries and let them end `wait_for_completion` early.

    Signing keys are fetched through the client (`GET /auth/webhooks/key/{kid}`) and
    cached; see KeyCache for the limits that keep made-up key ids from reaching the API.
    """

    def __init__(
        self,
        client: ClientHandle,
        *,
        max_keys: int = 32,
        key_ttl: float = 24 * 3600.0,
        miss_ttl: float = 15.0,
        fetch_burst: int = 8,
        fetch_interval: float = 2.0,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._keys: KeyCache[RSAPublicKey] = KeyCache(
            self._fetch_key,
            load_rsa_public_key,
            max_keys=max_keys,
            key_ttl=key_ttl,
            miss_ttl=miss_ttl,
            fetch_burst=fetch_burst,
            fetch_interval=fetch_interval,
            fetch_timeout=fetch_timeout,
            clock=clock,
        )
        self._crypto_checked = False
        # What receive() logs per refused delivery: forged ones cost nothing to send.
        self._log_closed = RateLimitedLog(logger, logging.WARNING, clock=clock)
        self._log_unavailable = RateLimitedLog(logger, logging.WARNING, clock=clock)
        self._log_rejected = RateLimitedLog(logger, logging.INFO, clock=clock)

    @property
    def key_fetches(self) -> int:
        """How many signing-key fetches were started so far."""
        return self._keys.fetches

    async def verify(
        self, headers: Headers, body: bytes, *, max_body: int = DEFAULT_MAX_BODY
    ) -> WebhookEvent:
        """Check the delivery's signature over the exact `body` bytes; return its event.

        Raises WebhookVerificationError for anything wrong (its subclass
        WebhookKeyUnavailableError when the key could not be fetched now: a retry may
        pass). The body is not parsed before the signature is proven good. A body over
        `max_body` bytes (1 MiB) is refused before anything else: a delivery is a small
        JSON object, and hashing and parsing megabytes would hold up the event loop.
        """
        check_max_body(max_body)
        if not self._crypto_checked:
            require_cryptography()
            self._crypto_checked = True
        data = _as_bytes(body)
        if len(data) > max_body:
            raise WebhookVerificationError(
                f"webhook rejected: the body is {len(data)} bytes, over max_body={max_body}"
            )
        jws = parse_detached_jws(signature_header(headers))
        key = await self._keys.get(jws.kid)
        if not rs256_verify(key, jws.signature, jws.signing_input(data)):
            raise WebhookVerificationError(
                "webhook rejected: the signature does not match the header and body"
            )
        return event_from_body(data)

    async def handle(
        self, headers: Headers, body: bytes, *, max_body: int = DEFAULT_MAX_BODY
    ) -> WebhookEvent:
        """Verify, then wake every `wait_for_completion` waiting on the event's execution.

        With a coordination backend, the news also reaches the waits of every client
        sharing it, in any process. A woken waiter confirms with one GET, so a repeated
        delivery, or one for an execution nobody waits on, is harmless. On a closed
        client it raises
        ClientClosedError instead, even for a genuine delivery: nobody is left to wake,
        and the sender should retry until a running receiver takes the event.
        """
        lifecycle = self._client.lifecycle
        lifecycle.check_open()
        event = await self.verify(headers, body, max_body=max_body)
        # Closed while a signing key was fetched: still not acknowledged.
        lifecycle.check_open()
        if event.execution_id is not None:
            self._client.wakeups.wake(event.execution_id)
            status = None if event.status is None else str(event.status)
            await self._client.news.announce(event.execution_id, status)
        return event

    async def receive(
        self, headers: Headers, body: bytes, *, max_body: int = DEFAULT_MAX_BODY
    ) -> tuple[int, str]:
        """What a receiver answers a delivery: (HTTP status, short plain text).

        204 when handled; 400 when the delivery is not genuine; 413 when the body is over
        `max_body` bytes; 503 when it cannot be handled now (the key could not be fetched,
        or the client is closed: the sender retries).
        Only verification and the wake-up happen here, so the answer comes quickly. Each
        kind of refusal is logged once a minute at most (WARNING for 503, INFO for 400);
        the others go to DEBUG, and the next line says how many there were.
        """
        check_max_body(max_body)
        if isinstance(body, (bytes, bytearray, memoryview)) and len(body) > max_body:
            self._log_rejected.log("webhook rejected: the body is over max_body=%d", max_body)
            return 413, "body too large"
        try:
            await self.handle(headers, body, max_body=max_body)
        except ClientClosedError as exc:
            self._log_closed.log("webhook not accepted: %s", exc)
            return 503, "receiver closed; retry later"
        except WebhookKeyUnavailableError as exc:
            self._log_unavailable.log("%s", exc)
            return 503, "signing key unavailable; retry later"
        except WebhookVerificationError as exc:
            self._log_rejected.log("%s", exc)
            return 400, "invalid webhook signature"
        return 204, ""

    async def _fetch_key(self, kid: str) -> bytes | None:
        request = ApiRequest(
            method="GET",
            # kid is a checked path segment and the query is fixed: already encoded.
            path=f"/auth/webhooks/key/{kid}?pem=true",
            accept="text/plain",
            max_body=_MAX_KEY_BYTES,
        )
        try:
            response = await self._client.send(request)
        except NotFoundError:
            return None
        except BodyTooLarge:
            raise InvalidResponseError(
                f"the signing key answer is over {_MAX_KEY_BYTES} bytes"
            ) from None
        return response.body


async def receive(
    tl: TransactionLink, headers: Headers, body: bytes, *, max_body: int = DEFAULT_MAX_BODY
) -> tuple[int, str]:
    """What a receiver answers a delivery: see `Webhooks.receive`."""
    return await tl.webhooks.receive(headers, body, max_body=max_body)


def starlette_endpoint(
    tl: TransactionLink, *, max_body: int = DEFAULT_MAX_BODY
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """A Starlette / FastAPI endpoint receiving this client's webhooks.

    >>> app.add_api_route("/webhooks/transactionlink", starlette_endpoint(tl), methods=["POST"])
    """
    check_max_body(max_body)
    require_cryptography()
    from .starlette_receiver import make_endpoint

    return make_endpoint(tl, max_body)


def aiohttp_handler(
    tl: TransactionLink, *, max_body: int = DEFAULT_MAX_BODY
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp.web handler receiving this client's webhooks.

    >>> app.router.add_post("/webhooks/transactionlink", aiohttp_handler(tl))
    """
    check_max_body(max_body)
    require_cryptography()
    from .aiohttp_receiver import make_handler

    return make_handler(tl, max_body)
