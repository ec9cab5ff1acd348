"""ApiRequest, what a feature asks the client to send; request bodies out, JSON answers in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._datetimes import format_datetime
from ._retry import RetryMode
from .errors import InvalidResponseError

__all__ = ["NO_BODY", "ApiRequest", "encode_body", "parse_json"]

#: The `json` of a request that has no body (None is a JSON value: `null`).
NO_BODY: Any = object()


@attrs.frozen(kw_only=True)
class ApiRequest:
    """What a resource method asks the client to send."""

    method: str
    path: str
    json: Any = NO_BODY
    mode: RetryMode = RetryMode.IDEMPOTENT
    authenticated: bool = True
    #: The body and the answers hold secrets (auth calls): errors never quote them.
    secret: bool = False
    accept: str = "application/json"
    #: Refuse answers with a larger body (BodyTooLarge) instead of holding them.
    max_body: int | None = None

    @property
    def has_body(self) -> bool:
        return self.json is not NO_BODY


def _json_value(value: object) -> object:
    """What the standard encoder cannot write itself: aware datetimes, any Mapping."""
    if isinstance(value, datetime):
        return format_datetime(value)  # ISO 8601 in UTC; ValueError for a naive one
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_body(request: ApiRequest) -> bytes:
    """The request's JSON, or a clear error before anything is sent.

    The one rule for every body: JSON values, any Mapping, and aware datetimes (written
    in UTC with "Z"); nothing nested deeper than Python can walk, and no cycles.
    """
    try:
        # NaN and Infinity are not JSON: the API would refuse them, so refuse them here.
        return json.dumps(request.json, allow_nan=False, default=_json_value).encode()
    except RecursionError:
        raise ValueError(
            f"{request.method} {request.path}: the body is nested too deeply to send"
        ) from None
    except ValueError as exc:  # a cycle ("Circular reference detected"), NaN, naive datetime
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
