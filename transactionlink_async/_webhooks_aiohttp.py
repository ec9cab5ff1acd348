"""The aiohttp.web webhook receiver; imported only when asked for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .webhooks import receive

if TYPE_CHECKING:
    from ._client import TransactionLink

__all__ = ["make_handler"]


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it proves longer than `limit`."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def make_handler(
    tl: TransactionLink, max_body: int
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be a positive int, got {max_body!r}")

    async def transactionlink_webhook(request: web.Request) -> web.StreamResponse:
        body = await _read_capped(request, max_body)
        if body is None:
            response = web.Response(status=413, text="body too large")
            # The rest of the body stays unread: the connection cannot be reused.
            response.force_close()
            return response
        status, text = await receive(tl, request.headers, body, max_body=max_body)
        if status == 204:
            return web.Response(status=204)
        headers = {"Retry-After": "5"} if status == 503 else None
        return web.Response(status=status, text=text, headers=headers)

    return transactionlink_webhook
