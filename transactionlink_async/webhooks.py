"""Webhook deliveries: signature checks, events, and ready receivers for Starlette and aiohttp."""

from __future__ import annotations

from ._webhooks.openapi import WEBHOOK_OPENAPI_EXTRA, WEBHOOK_RESPONSES
from ._webhooks.receive import (
    DEFAULT_MAX_BODY,
    SIGNATURE_HEADER,
    WebhookEvent,
    Webhooks,
    aiohttp_handler,
    event_from_body,
    receive,
    signature_header,
    starlette_endpoint,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "SIGNATURE_HEADER",
    "WEBHOOK_OPENAPI_EXTRA",
    "WEBHOOK_RESPONSES",
    "WebhookEvent",
    "Webhooks",
    "aiohttp_handler",
    "event_from_body",
    "receive",
    "signature_header",
    "starlette_endpoint",
]
