"""Serving an ASGI app with uvicorn on a loopback port, for tests that talk to it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` (lifespan on) on a free loopback port; its URL, then a graceful stop."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve()
        finally:
            stopped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        with anyio.fail_after(10):
            while not server.started:
                if stopped.is_set():
                    raise RuntimeError("uvicorn stopped before it started (see its log)")
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            # A graceful stop (lifespan shutdown, sockets closed), even when the test failed.
            server.should_exit = True
            with anyio.CancelScope(shield=True), anyio.fail_after(10):
                await stopped.wait()
