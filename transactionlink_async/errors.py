"""The exception tree: everything the SDK raises on purpose derives from TransactionLinkError."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from ._convert import structure
from .models import ErrorDetail, ErrorResponse, WorkflowExecution

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ErrorDetail",
    "InvalidResponseError",
    "LaunchInDoubtError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultDownloadError",
    "ResultTooLargeError",
    "ServerError",
    "TransactionLinkError",
    "TransportError",
    "WaitTimeoutError",
    "WebhookKeyUnavailableError",
    "WebhookVerificationError",
    "error_for_status",
]


class TransactionLinkError(Exception):
    """Base of every error the SDK raises on purpose."""


class APIError(TransactionLinkError):
    """The API answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        fingerprint: str | None = None,
        errors: tuple[ErrorDetail, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.fingerprint = fingerprint
        self.errors = errors

    def __str__(self) -> str:
        text = super().__str__()
        if self.fingerprint:
            text += f" (fingerprint {self.fingerprint})"
        return text


class BadRequestError(APIError):
    """400: the API refused the request's content."""


class AuthenticationError(APIError):
    """401: the credentials are missing, wrong or expired."""


class PermissionDeniedError(APIError):
    """403: the credentials lack a permission (e.g. `can_run`, `can_view_workspace`)."""


class NotFoundError(APIError):
    """404: no such resource (or no result yet)."""


class RateLimitError(APIError):
    """429: too many requests; `.retry_after` says how long the API asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the API failed on its side."""


class TransportError(TransactionLinkError):
    """No usable answer: the connection failed, timed out, or the body broke off."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class InvalidResponseError(TransportError):
    """The API answered, but with a body the SDK cannot read as the documented shape."""

    def __init__(self, message: str) -> None:
        super().__init__(message, request_sent=True)


class WaitTimeoutError(TransactionLinkError, TimeoutError):
    """`wait_for_completion` ran out of time; `.last` is the last execution seen (or None)."""

    def __init__(self, message: str, *, last: WorkflowExecution | None = None) -> None:
        super().__init__(message)
        self.last: WorkflowExecution | None = last


class ResultTooLargeError(TransactionLinkError):
    """The result is larger than `get_result` will hold in memory."""

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ResultDownloadError(TransactionLinkError):
    """A result could not be downloaded completely and correctly."""


class WebhookVerificationError(TransactionLinkError):
    """A webhook delivery failed signature verification; it must not be acted on."""


class WebhookKeyUnavailableError(WebhookVerificationError):
    """The delivery's signing key could not be fetched now; answer 503 so the sender retries."""


class LaunchInDoubtError(TransactionLinkError):
    """A journaled launch may have reached the API, and no answer was recorded for it.

    It is never resent on its own: find out whether the execution exists (the API, the
    dashboard), then record it with `await journal.resolve(key, execution_id)`, or with
    `resolve(key, None)` when it was not launched, so that the next run sends it.
    """

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"the launch of key {key!r} may have reached the API, but no answer was "
            "recorded: check whether it exists, then call journal.resolve(key, execution_id) "
            "(or resolve(key, None) if it was not launched, so that the next run sends it)"
        )
        self.key = key


class ClientClosedError(TransactionLinkError):
    """The client was used after it was closed."""


_STATUS_CLASSES: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

_HINTS: Mapping[type[APIError], str] = {
    AuthenticationError: "check the credentials (organization token, or API key and secret)",
    PermissionDeniedError: (
        "the credentials lack a permission: `can_run` on the workflow definition to start it, "
        "`can_view_workspace` to read or cancel"
    ),
    RateLimitError: "slow down, or raise RetryPolicy.max_retry_after to wait longer",
}


def _parse_error_body(body: bytes) -> tuple[str | None, tuple[ErrorDetail, ...]]:
    """Read an `ErrorResponse`; anything else yields no fingerprint and no details."""
    try:
        data = json.loads(body)
        parsed = structure(data, ErrorResponse)
    except (ValueError, RecursionError):
        return None, ()
    return parsed.fingerprint, parsed.errors


#: Shorter values are not blanked out of messages (they would mangle them, and hide nothing).
_SECRET_MIN = 4


def _blanked(text: str, secrets: Collection[str]) -> str:
    for secret in secrets:
        if len(secret) >= _SECRET_MIN:
            text = text.replace(secret, "…")
    return text


def error_for_status(
    *,
    status: int,
    method: str,
    url: str,
    body: bytes,
    retry_after: float | None = None,
    secrets: Collection[str] | None = None,
) -> APIError:
    """Build the right `APIError` subclass for an error answer, whatever its body.

    With `secrets` (an auth call's answer, and the values it sent), the body is never
    quoted as it is, and those values are blanked out of the API's own messages: an
    endpoint (or a proxy before it) may echo what it was sent.
    """
    cls = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else APIError)
    fingerprint, details = _parse_error_body(body)
    if secrets is not None:
        details = tuple(
            ErrorDetail(code=_blanked(d.code, secrets), message=_blanked(d.message, secrets))
            for d in details
        )
    what = "; ".join(f"{d.code}: {d.message}" if d.code else d.message for d in details)
    if not what:
        snippet = body[:200].decode("utf-8", "replace").strip()
        if not snippet:
            what = "no error details in the answer"
        elif secrets is not None:
            what = f"an answer of {len(body)} bytes, not shown (it may hold secrets)"
        else:
            what = f"answer: {snippet!r}"
    message = f"{method} {url} failed with HTTP {status}: {what}"
    hint = _HINTS.get(cls)
    if hint:
        message += f" ({hint})"
    kwargs: dict[str, Any] = {
        "status": status,
        "method": method,
        "url": url,
        "fingerprint": fingerprint,
        "errors": details,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
