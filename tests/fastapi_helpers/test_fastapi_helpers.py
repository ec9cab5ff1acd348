"""transactionlink_async.fastapi under uvicorn: lifespan, dependency, and the webhook route."""

from __future__ import annotations

import httpx
import pytest
from asgi_server import serving
from fastapi import FastAPI
from starlette.requests import Request

from transactionlink_async import OrganizationToken, RetryPolicy, TransactionLink
from transactionlink_async.fastapi import (
    TransactionLinkDep,
    add_webhook_route,
    get_transactionlink,
    transactionlink_lifespan,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio

PATH = "/webhooks/transactionlink"


def client_for(fake: FakeTransactionLink) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        retry=RetryPolicy(max_attempts=1),
    )


def app_with_routes(lifespan: object) -> FastAPI:
    app = FastAPI(lifespan=lifespan)  # type: ignore[arg-type]
    add_webhook_route(app)

    @app.get("/status/{execution_id}")
    async def status(execution_id: str, tl: TransactionLinkDep) -> dict[str, str]:
        return {"status": str((await tl.workflows.get(execution_id)).status)}

    return app


async def test_the_lifespan_opens_the_client_and_routes_get_it(fake: FakeTransactionLink) -> None:
    execution_id = fake.create_execution()
    made: list[TransactionLink] = []

    def make() -> TransactionLink:
        made.append(client_for(fake))
        return made[-1]

    app = app_with_routes(transactionlink_lifespan(make))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.get(f"/status/{execution_id}")
        assert answer.json() == {"status": "COMPLETED"}
        assert app.state.transactionlink is made[0]
        assert not made[0].closed
    assert made[0].closed  # closed with the app
    # Started again (as tests do), the app gets a fresh client.
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get(f"/status/{execution_id}")).status_code == 200
    assert len(made) == 2


async def test_without_arguments_the_client_comes_from_the_environment(
    fake: FakeTransactionLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSACTIONLINK_TOKEN", fake.org_token)
    monkeypatch.setenv("TRANSACTIONLINK_BASE_URL", fake.base_url)
    execution_id = fake.create_execution()
    app = app_with_routes(transactionlink_lifespan())
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get(f"/status/{execution_id}")).json() == {"status": "COMPLETED"}


async def test_the_webhook_route_answers_as_its_openapi_says(fake: FakeTransactionLink) -> None:
    tl = client_for(fake)
    app = app_with_routes(transactionlink_lifespan(tl))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        schema = (await http.get("/openapi.json")).json()
        headers, body = fake.webhooks.signed({"workflowId": "w-1", "status": "COMPLETED"})
        genuine = await http.post(PATH, headers=headers, content=body)
        headers, body = fake.webhooks.signed({"workflowId": "w-1"}, "tampered")
        forged = await http.post(PATH, headers=headers, content=body)
        headers, body = fake.webhooks.signed({"workflowId": "w-1", "pad": "x" * 2_000_000})
        huge = await http.post(PATH, headers=headers, content=body)
        fake.webhooks.rotate_key()
        fake.inject("GET", "/auth/webhooks/key/*", status=500, times=None)
        headers, body = fake.webhooks.signed({"workflowId": "w-1"})
        unreachable = await http.post(PATH, headers=headers, content=body)
    answers = {r.status_code for r in (genuine, forged, huge, unreachable)}
    assert answers == {204, 400, 413, 503}
    assert unreachable.headers["retry-after"] == "5"

    operation = schema["paths"][PATH]["post"]
    assert set(operation["responses"]) == answers_as_text(answers)
    assert "Retry-After" in operation["responses"]["503"]["headers"]
    assert "content" not in operation["responses"]["204"]
    assert [p["name"] for p in operation["parameters"]] == ["JWS-SIGNATURE"]
    assert "application/json" in operation["requestBody"]["content"]


def answers_as_text(statuses: set[int]) -> set[str]:
    return {str(s) for s in statuses}


async def test_a_webhook_route_for_a_given_client(fake: FakeTransactionLink) -> None:
    tl = client_for(fake)
    app = FastAPI()
    add_webhook_route(app, "/hooks/tl", client=tl, tags=["webhooks"])
    async with tl, serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        headers, body = fake.webhooks.signed({"workflowId": "w-1"})
        assert (await http.post("/hooks/tl", headers=headers, content=body)).status_code == 204
        schema = (await http.get("/openapi.json")).json()
    assert schema["paths"]["/hooks/tl"]["post"]["tags"] == ["webhooks"]


def test_the_dependency_says_what_is_missing() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}})
    with pytest.raises(RuntimeError, match=r"lifespan=transactionlink_lifespan"):
        get_transactionlink(request)


async def test_bad_lifespan_arguments(fake: FakeTransactionLink) -> None:
    with pytest.raises(TypeError, match="takes a TransactionLink"):
        transactionlink_lifespan("tot_x")  # type: ignore[arg-type]
    lifespan = transactionlink_lifespan(lambda: "oops")  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="returned str, not a TransactionLink"):
        async with lifespan(FastAPI()):
            pass
