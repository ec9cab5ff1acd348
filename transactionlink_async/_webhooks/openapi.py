"""How the ready webhook receivers answer, described for an app's OpenAPI document."""

from __future__ import annotations

from typing import Any

__all__ = ["WEBHOOK_OPENAPI_EXTRA", "WEBHOOK_RESPONSES"]

_TEXT: dict[str, Any] = {"text/plain": {"schema": {"type": "string"}}}

#: The answers of `starlette_endpoint` (FastAPI's `responses=`): what the sender gets.
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "The delivery is genuine; waits on its execution end at once."},
    400: {
        "description": (
            "Not a genuine delivery: a missing or bad JWS-SIGNATURE, an unknown key, "
            "or a signed body that is not a JSON object. Nothing else happens."
        ),
        "content": _TEXT,
    },
    413: {"description": "The body is larger than the receiver accepts (1 MiB).", "content": _TEXT},
    503: {
        "description": (
            "The signing key cannot be fetched right now, or the client is closed: "
            "the sender retries later."
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before delivering again.",
                "schema": {"type": "integer", "example": 5},
            }
        },
        "content": _TEXT,
    },
}

#: The request a delivery is (FastAPI's `openapi_extra=`): a signed JSON body.
WEBHOOK_OPENAPI_EXTRA: dict[str, Any] = {
    "parameters": [
        {
            "name": "JWS-SIGNATURE",
            "in": "header",
            "required": True,
            "description": "A detached RS256 JWS over the exact body bytes.",
            "schema": {"type": "string"},
        }
    ],
    "requestBody": {
        "required": True,
        "description": "The event TransactionLink signed, checked before it is parsed.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}
