"""A FastAPI app that verifies its users through TransactionLink workflows.

One client serves the whole app: it is opened in the lifespan and shared by every request.
Webhook deliveries arrive at /webhooks/transactionlink, are verified, and end the waits of
/verifications/{id}/outcome at once; polling stays as the safety net.

    TRANSACTIONLINK_TOKEN=tot_... TRANSACTIONLINK_WORKFLOW=<definition id> \\
        uvicorn examples.fastapi_app:create_app --factory

Environment: TRANSACTIONLINK_TOKEN (or TRANSACTIONLINK_API_KEY and
TRANSACTIONLINK_API_SECRET), TRANSACTIONLINK_BASE_URL (optional), TRANSACTIONLINK_WORKFLOW
(the workflow definition to run), TRANSACTIONLINK_LOCALE (optional, default en).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from transactionlink_async import (
    APIError,
    NotFoundError,
    PollPolicy,
    TransactionLink,
    TransportError,
    WaitTimeoutError,
    WorkflowExecution,
    WorkflowStatus,
)
from transactionlink_async.webhooks import starlette_endpoint

# Webhooks bring the news; a slow poll only covers a delivery that never arrives.
SAFETY_NET_POLL = PollPolicy(initial=10.0, multiplier=2.0, maximum=60.0)


class StartVerification(BaseModel):
    user_id: str


def _view(execution: WorkflowExecution) -> dict[str, Any]:
    return {"id": execution.id, "status": str(execution.status), "final": execution.is_final}


def create_app(tl: TransactionLink | None = None) -> FastAPI:
    """The app, with a client from the environment unless one is given."""
    client = tl or TransactionLink.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client:  # closes every connection when the app stops
            yield

    app = FastAPI(lifespan=lifespan)
    app.state.transactionlink = client
    app.add_api_route("/webhooks/transactionlink", starlette_endpoint(client), methods=["POST"])

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> Response:
        # The fingerprint is what TransactionLink support asks for: log it, show it.
        status = 404 if isinstance(exc, NotFoundError) else 502
        return JSONResponse(
            status_code=status,
            content={"detail": "TransactionLink refused", "fingerprint": exc.fingerprint},
        )

    @app.exception_handler(TransportError)
    async def unreachable(request: Request, exc: TransportError) -> Response:
        return JSONResponse(
            status_code=503, content={"detail": "TransactionLink could not be reached; try again"}
        )

    @app.post("/verifications", status_code=201)
    async def start(body: StartVerification) -> dict[str, Any]:
        execution = await client.workflows.initialise(
            workflow_definition_id=os.environ["TRANSACTIONLINK_WORKFLOW"],
            locale=os.environ.get("TRANSACTIONLINK_LOCALE", "en"),
            parameters={"userId": body.user_id},
        )
        # The link goes to the person; the execution's `token` stays on the server.
        return {**_view(execution), "link": execution.link}

    @app.get("/verifications/{execution_id}")
    async def show(execution_id: str) -> dict[str, Any]:
        return _view(await _get(client, execution_id))

    @app.get("/verifications/{execution_id}/outcome")
    async def outcome(execution_id: str, response: Response, wait: float = 25.0) -> dict[str, Any]:
        """Long poll: answers as soon as the workflow is final, or 202 after `wait` seconds."""
        if not 0 < wait <= 60:
            raise HTTPException(422, "wait must be between 0 and 60 seconds")
        try:
            execution = await client.workflows.wait_for_completion(
                execution_id, timeout=wait, poll=SAFETY_NET_POLL
            )
        except WaitTimeoutError as exc:
            response.status_code = 202
            last = exc.last  # None when the wait ended before its first check
            return _view(last if last is not None else await _get(client, execution_id))
        except ValueError as exc:  # not a plain id: refused before anything was sent
            raise HTTPException(404, str(exc)) from None
        view = _view(execution)
        if execution.status == WorkflowStatus.COMPLETED:
            result = await client.workflows.get_result(execution.id)
            view["decision"] = result.get("decision") if isinstance(result, dict) else None
        return view

    return app


async def _get(client: TransactionLink, execution_id: str) -> WorkflowExecution:
    try:
        return await client.workflows.get(execution_id)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
