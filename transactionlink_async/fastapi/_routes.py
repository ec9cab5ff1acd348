"""The webhook route, documented in the app's OpenAPI with the answers it really gives."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._client import TransactionLink
from .._webhooks.jws import require_cryptography
from .._webhooks.openapi import WEBHOOK_OPENAPI_EXTRA, WEBHOOK_RESPONSES
from .._webhooks.receive import DEFAULT_MAX_BODY, check_max_body, starlette_endpoint
from ._depends import get_transactionlink

__all__ = ["add_webhook_route"]


def add_webhook_route(
    app: Any,
    path: str = "/webhooks/transactionlink",
    *,
    client: TransactionLink | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    **route_options: Any,
) -> None:
    """Add the webhook receiver at `path` to a FastAPI app or APIRouter.

    It verifies each delivery and ends the matching waits, answering 204, 400, 413 or
    503 (with Retry-After), as its OpenAPI entry says. `client` defaults to the one
    `transactionlink_lifespan` opened. `route_options` go to `add_api_route` (tags...).

    >>> add_webhook_route(app)
    """
    if client is not None:
        endpoint = starlette_endpoint(client, max_body=max_body)
    else:
        check_max_body(max_body)
        require_cryptography()  # fail now, not at the first delivery
        endpoint = _from_state(max_body)
    options: dict[str, Any] = {
        "methods": ["POST"],
        "status_code": 204,
        "response_class": Response,
        "responses": WEBHOOK_RESPONSES,
        "openapi_extra": WEBHOOK_OPENAPI_EXTRA,
        "summary": "Receive a TransactionLink webhook",
        "description": "Verifies the delivery's signature, then ends the matching waits.",
        **route_options,
    }
    app.add_api_route(path, endpoint, **options)


def _from_state(max_body: int) -> Any:
    """An endpoint that serves with the client the lifespan put in the app's state."""
    made: list[tuple[TransactionLink, Any]] = []

    async def transactionlink_webhook(request: Request) -> Response:
        client = get_transactionlink(request)
        # One endpoint for the current client (an app restarted in tests gets a new one).
        if not made or made[0][0] is not client:
            made[:] = [(client, starlette_endpoint(client, max_body=max_body))]
        response: Response = await made[0][1](request)
        return response

    return transactionlink_webhook
