"""Error answers whose body arrives in pieces still give their fingerprint and details."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from transactionlink_async import (
    BadRequestError,
    OrganizationToken,
    RetryPolicy,
    ServerError,
    TransactionLink,
)

pytestmark = pytest.mark.anyio

BODY = json.dumps(
    {
        "fingerprint": "fp-5d1c",
        "errors": [{"code": "LOCALE", "message": "unknown locale " + "x" * 300}],
    }
).encode()


async def answer_in_two_pieces(request: web.Request) -> web.StreamResponse:
    # The client's base URL says how to answer: /<status>/<framing>/...
    _, status, framing, *_ = request.path.split("/")
    response = web.StreamResponse(status=int(status), headers={"Content-Type": "application/json"})
    if framing == "chunked":
        response.enable_chunked_encoding()
    else:
        response.content_length = len(BODY)
    await response.prepare(request)
    await response.write(BODY[:40])
    # The first piece is read on its own before the rest arrives.
    await asyncio.sleep(0.1)
    await response.write(BODY[40:])
    await response.write_eof()
    return response


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer_in_two_pieces)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("status", "error"), [(400, BadRequestError), (500, ServerError)])
async def test_an_error_body_in_two_pieces_keeps_its_details(
    base_url: str, chunked: bool, status: int, error: type[Exception]
) -> None:
    framing = "chunked" if chunked else "length"
    async with TransactionLink(
        OrganizationToken("tot_x"),
        base_url=f"{base_url}/{status}/{framing}",
        retry=RetryPolicy.no_retries(),
    ) as tl:
        with pytest.raises(error) as caught:
            await tl.workflows.get("ex-1")
    assert caught.value.fingerprint == "fp-5d1c"  # type: ignore[attr-defined]
    assert [(d.code, d.message[:14]) for d in caught.value.errors] == [  # type: ignore[attr-defined]
        ("LOCALE", "unknown locale")
    ]
