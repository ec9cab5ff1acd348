"""The aiohttp.web webhook receiver; imported only when asked for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .body import read_capped

if TYPE_CHECKING:
    from .._client import TransactionLink

__all__ = ["make_handler"]


def make_handler(
    tl: TransactionLink, max_body: int
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def transactionlink_webhook(request: web.Request) -> web.StreamResponse:
        body = await read_capped(request.content.iter_any(), request.content_length, max_body)
        if body is None:
            response = web.Response(status=413, text="body too large")
            # The rest of the body stays unread: the connection cannot be reused.
            response.force_close()
            return response
        status, text = await tl.webhooks.receive(request.headers, body, max_body=max_body)
        if status == 204:
            return web.Response(status=204)
        headers = {"Retry-After": "5"} if status == 503 else None
        return web.Response(status=status, text=text, headers=headers)

    return transactionlink_webhook
