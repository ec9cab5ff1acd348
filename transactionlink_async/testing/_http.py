"""HTTP helpers for the fake server: ErrorResponse answers, JSON bodies, timestamps."""

from __future__ import annotations

import datetime as dt
import http
import json
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = [
    "JSON_CONTENT_TYPE",
    "ApiError",
    "error_body",
    "error_code",
    "error_response",
    "format_timestamp",
    "json_response",
    "parse_timestamp",
    "read_json_object",
]

# What the real API labels its answers with (workflows-v3.openapi.json).
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


class ApiError(Exception):
    """Raised by a handler to answer with an ErrorResponse."""

    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or error_code(status)
        self.message = message


def error_code(status: int) -> str:
    """An opaque-looking code for a status, e.g. 429 -> "TOO_MANY_REQUESTS"."""
    try:
        return http.HTTPStatus(status).name
    except ValueError:
        return f"HTTP_{status}"


def error_body(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """The ErrorResponse JSON, with a fresh fingerprint."""
    return {
        "fingerprint": str(uuid.uuid4()),
        "errors": [{"code": code or error_code(status), "message": message}],
    }


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    # ErrorResponse bodies are labelled plain application/json in the spec.
    return web.Response(
        status=status,
        body=json.dumps(error_body(status, message, code=code)).encode(),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _is_json_media_type(content_type: str) -> bool:
    # Accepts "application/json;version=2" and "application/problem+json" alike.
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        return True
    return media.startswith("application/") and media.endswith("+json")


def read_json_object(request: web.Request, body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 415 / 400."""
    if not _is_json_media_type(request.headers.get("Content-Type", "")):
        raise ApiError(415, "Content-Type must be application/json")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "The body must be a JSON object")
    return value


def format_timestamp(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, the way the API writes dates."""
    utc = moment.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> dt.datetime:
    """An aware datetime from ISO 8601 text; ValueError when it is not one or has no offset."""
    # fromisoformat only learned "Z" in Python 3.11.
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return moment
