"""The Starlette / FastAPI webhook receiver; imported only when asked for (optional extra)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

try:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
except ImportError as exc:
    raise ImportError(
        "the Starlette webhook endpoint needs starlette; "
        "install the extra: pip install 'transactionlink-async[starlette]'"
    ) from exc

from .webhooks import receive

if TYPE_CHECKING:
    from ._client import TransactionLink

__all__ = ["make_endpoint"]


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it proves longer than `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def make_endpoint(tl: TransactionLink, max_body: int) -> Callable[[Request], Awaitable[Response]]:
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be a positive int, got {max_body!r}")

    # The annotations are real classes (not strings) so FastAPI can see `request: Request`.
    async def transactionlink_webhook(request: Request) -> Response:
        body = await _read_capped(request, max_body)
        if body is None:
            return PlainTextResponse("body too large", status_code=413)
        status, text = await receive(tl, request.headers, body, max_body=max_body)
        if status == 204:
            return Response(status_code=204)
        headers = {"Retry-After": "5"} if status == 503 else None
        return PlainTextResponse(text, status_code=status, headers=headers)

    return transactionlink_webhook
