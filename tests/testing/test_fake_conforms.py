"""The fake's answers on the vendor's documented routes conform to the vendor's OpenAPI schemas.

Requests are sent raw (aiohttp, real sockets) so the bodies checked are the fake's own
bytes. Inputs conform too: the schema says definition ids come back as UUIDs, so the
definitions here are named by UUIDs.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vendor_spec import SPEC_PATH, problems, response_validator, schema_validator, spec

from transactionlink_async.testing import FakeTransactionLink

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(spec() is None, reason=f"the vendor's OpenAPI is not at {SPEC_PATH}"),
]

BACKGROUND = str(uuid.UUID(int=1))
INTERACTIVE = str(uuid.UUID(int=2))
DOCUMENTED_STATUSES = (
    "INITIALISED", "CREATED", "RUNNING", "COMPLETED", "AWAITING", "FAILED", "TIMEOUT",
    "TERMINATED", "EXPIRED", "CANCELLED", "PAUSED",
)  # fmt: skip
ERROR_STATUSES = (400, 401, 403, 404, 500)


@pytest.fixture
async def api(fake: FakeTransactionLink) -> AsyncIterator[aiohttp.ClientSession]:
    fake.define_workflow(BACKGROUND, statuses=("RUNNING", "COMPLETED"))
    fake.define_workflow(INTERACTIVE, statuses=("RUNNING", "COMPLETED"), interactive=True)
    headers = {"Authorization": fake.org_token}
    async with aiohttp.ClientSession(fake.base_url, headers=headers) as session:
        yield session


async def answer(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, str, bytes]:
    async with session.request(method, path, **kwargs) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def assert_conforms(method: str, route: str, status: int, body: bytes) -> Any:
    value = json.loads(body)
    found = problems(response_validator(method, route, status), value)
    assert found == [], f"{method} {route} {status}: {found} in {value}"
    return value


def launch_body(definition: str, **extra: Any) -> dict[str, Any]:
    return {"workflowDefinitionId": definition, "locale": "en", "parameters": {}, **extra}


def in_an_hour() -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()


async def test_launches_conform_to_their_own_shape(api: aiohttp.ClientSession) -> None:
    status, _, body = await answer(api, "POST", "/workflows", json=launch_body(BACKGROUND))
    assert status == 200
    background = assert_conforms("POST", "/workflows", 200, body)
    assert problems(schema_validator("InitialiseWorkflowBackgroundResponse"), background) == []
    launch = launch_body(INTERACTIVE, expiresAt=in_an_hour(), recordId=str(uuid.uuid4()))
    status, _, body = await answer(api, "POST", "/workflows", json=launch)
    assert status == 200
    interactive = assert_conforms("POST", "/workflows", 200, body)
    assert problems(schema_validator("InitialiseWorkflowInteractiveResponse"), interactive) == []
    assert interactive["recordId"] == launch["recordId"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    interactive=st.booleans(),
    locale=st.text(min_size=1, max_size=8).filter(str.strip),
    parameters=st.dictionaries(
        st.text(max_size=6), st.none() | st.booleans() | st.integers() | st.text(), max_size=3
    ),
    expires_in=st.none() | st.floats(min_value=31 * 60, max_value=29 * 86400),
    record=st.booleans(),
)
async def test_every_launch_and_its_execution_conform(
    api: aiohttp.ClientSession,
    interactive: bool,
    locale: str,
    parameters: dict[str, Any],
    expires_in: float | None,
    record: bool,
) -> None:
    launch: dict[str, Any] = {
        "workflowDefinitionId": INTERACTIVE if interactive else BACKGROUND,
        "locale": locale,
        "parameters": parameters,
    }
    if expires_in is not None:
        moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=expires_in)
        launch["expiresAt"] = moment.isoformat()
    if record:
        launch["recordId"] = str(uuid.uuid4())
    status, _, body = await answer(api, "POST", "/workflows", json=launch)
    assert status == 200, body
    execution_id = assert_conforms("POST", "/workflows", 200, body)["id"]
    status, _, body = await answer(api, "GET", f"/workflows/{execution_id}")
    assert status == 200
    assert_conforms("GET", "/workflows/{workflowId}", 200, body)


@pytest.mark.parametrize("documented", DOCUMENTED_STATUSES)
async def test_an_execution_in_every_documented_status_conforms(
    api: aiohttp.ClientSession, fake: FakeTransactionLink, documented: str
) -> None:
    for definition in (BACKGROUND, INTERACTIVE):
        _, _, body = await answer(api, "POST", "/workflows", json=launch_body(definition))
        execution_id = json.loads(body)["id"]
        fake.set_status(execution_id, documented)
        status, content_type, body = await answer(api, "GET", f"/workflows/{execution_id}")
        assert status == 200
        assert content_type.startswith("application/json")
        assert assert_conforms("GET", "/workflows/{workflowId}", 200, body)["status"] == documented


async def test_started_the_v1_way_the_execution_conforms_too(
    api: aiohttp.ClientSession,
) -> None:
    status, _, body = await answer(api, "POST", "/cases", json={"firstName": "Ada"})
    assert status == 201
    run = {"caseId": json.loads(body)["caseId"], "workflowDefinitionId": BACKGROUND}
    status, _, body = await answer(api, "POST", "/workflows/run", json=run)
    assert status == 200
    status, _, body = await answer(api, "GET", f"/workflows/{json.loads(body)['id']}")
    assert status == 200
    assert_conforms("GET", "/workflows/{workflowId}", 200, body)


async def test_cancel_answers_200_with_no_body(api: aiohttp.ClientSession) -> None:
    _, _, body = await answer(api, "POST", "/workflows", json=launch_body(BACKGROUND))
    status, _, body = await answer(api, "POST", f"/workflows/{json.loads(body)['id']}/cancel")
    assert (status, body) == (200, b"")


async def test_results_inline_and_behind_a_link_conform(
    api: aiohttp.ClientSession, fake: FakeTransactionLink
) -> None:
    route = "/workflows/{workflowId}/result"
    small = fake.create_execution({"decision": "APPROVED", "score": 0.5})
    status, content_type, body = await answer(api, "GET", f"/workflows/{small}/result")
    assert status == 200
    assert content_type.startswith("application/json")
    assert assert_conforms("GET", route, 200, body) == {"decision": "APPROVED", "score": 0.5}
    large = fake.create_execution()
    fake.set_large_result(large, size=64 * 1024)
    status, _, body = await answer(api, "GET", f"/workflows/{large}/result")
    assert status == 200
    redirect = assert_conforms("GET", route, 200, body)
    assert set(redirect) == {"$redirect"}
    assert redirect["$redirect"].startswith(fake.s3.base_url + "/")


async def test_every_error_is_an_error_response(
    api: aiohttp.ClientSession, fake: FakeTransactionLink
) -> None:
    _, _, body = await answer(api, "POST", "/workflows", json=launch_body(BACKGROUND))
    known = json.loads(body)["id"]
    routes = {
        ("POST", "/workflows"): "/workflows",
        ("GET", "/workflows/{workflowId}"): f"/workflows/{known}",
        ("POST", "/workflows/{workflowId}/cancel"): f"/workflows/{known}/cancel",
        ("GET", "/workflows/{workflowId}/result"): f"/workflows/{known}/result",
    }
    seen: set[tuple[str, str, int]] = set()

    async def check(method: str, route: str, path: str, **kwargs: Any) -> None:
        status, content_type, body = await answer(api, method, path, **kwargs)
        assert status in ERROR_STATUSES, (method, path, status)
        assert content_type.startswith("application/json")
        assert_conforms(method, route, status, body)
        seen.add((method, route, status))

    for (method, route), path in routes.items():
        await check(method, route, path, headers={"Authorization": "tot_wrong"})  # 401
        for injected in (403, 500):
            fake.inject(method, path, status=injected)
            await check(method, route, path)
        if route != "/workflows":
            await check(method, route, path.replace(known, str(uuid.uuid4())))  # 404
    await check("POST", "/workflows", "/workflows", json={"locale": "en"})  # 400
    await check("GET", "/workflows/{workflowId}/result", f"/workflows/{known}/result")  # 404
    assert len(seen) == 4 * 3 + 3 + 1  # 401, 403, 500 everywhere; 404s; a 400


async def test_the_schema_checks_catch_what_they_should(api: aiohttp.ClientSession) -> None:
    _, _, body = await answer(api, "POST", "/workflows", json=launch_body(BACKGROUND))
    good = json.loads(body)
    validator = response_validator("GET", "/workflows/{workflowId}", 200)
    assert problems(validator, good) == []
    changes: list[tuple[dict[str, Any], str]] = [
        ({"expiresAt": None}, "expiresAt: None is not of type 'string'"),
        ({"expiresAt": "tomorrow"}, "expiresAt: 'tomorrow' is not a 'date-time'"),
        ({"expiresAt": "2030-01-01T00:00:00"}, "is not a 'date-time'"),  # no offset
        ({"id": "e-1"}, "id: 'e-1' is not a 'uuid'"),
        ({"status": "SHINY"}, "status: 'SHINY' is not one of"),
        ({"recordId": 5}, "recordId: 5 is not of type"),
        ({"origin": {}}, "origin: 'type' is a required property"),
    ]
    for change, expected in changes:
        found = problems(validator, {**good, **change})
        assert any(expected in line for line in found), (change, found)
    without = {k: v for k, v in good.items() if k != "workspaceId"}
    assert problems(validator, without) == ["(root): 'workspaceId' is a required property"]
    redirect = response_validator("GET", "/workflows/{workflowId}/result", 200)
    assert problems(redirect, [1, 2]) != []  # a result is an object
