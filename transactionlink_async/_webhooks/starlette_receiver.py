"""The Starlette / FastAPI webhook receiver; imported only when asked for (optional extra)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

try:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
except ImportError as exc:
    raise ImportError(
        "the Starlette webhook endpoint needs starlette; "
        "install the extra: pip install 'transactionlink-async[starlette]'"
    ) from exc

from .body import read_capped

if TYPE_CHECKING:
    from .._client import TransactionLink

__all__ = ["make_endpoint"]


def make_endpoint(
    tl: TransactionLink, max_body: int
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    # The annotations are real classes (not strings) so FastAPI can see `request: Request`.
    async def transactionlink_webhook(request: Request) -> Response:
        declared = request.headers.get("content-length")
        body = await read_capped(request.stream(), declared, max_body)
        if body is None:
            return PlainTextResponse("body too large", status_code=413)
        status, text = await tl.webhooks.receive(request.headers, body, max_body=max_body)
        if status == 204:
            return Response(status_code=204)
        headers = {"Retry-After": "5"} if status == 503 else None
        return PlainTextResponse(text, status_code=status, headers=headers)

    return transactionlink_webhook
