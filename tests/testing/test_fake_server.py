"""FakeTransactionLink driven over real sockets with a raw aiohttp client."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from transactionlink_async.testing import FakeTransactionLink, FaultRule, WorkflowScript
from transactionlink_async.testing._faults import path_matches
from transactionlink_async.testing._journal import Journal
from transactionlink_async.testing._jwt import b64url_decode
from transactionlink_async.testing._workflows import WorkflowProgress

pytestmark = pytest.mark.anyio

DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def org(fake: FakeTransactionLink) -> dict[str, str]:
    return {"Authorization": fake.org_token}


async def call(
    http: aiohttp.ClientSession,
    fake: FakeTransactionLink,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request; answers (status, parsed JSON or raw bytes or None, response)."""
    async with http.request(
        method,
        fake.base_url + path,
        json=json_body,
        headers=org(fake) if headers is None else headers,
    ) as resp:
        raw = await resp.read()
    parsed: Any = None
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
    return resp.status, parsed, resp


def assert_error_response(payload: Any) -> None:
    assert isinstance(payload["fingerprint"], str)
    assert payload["fingerprint"]
    assert payload["errors"]
    assert {"code", "message"} <= payload["errors"][0].keys()


def jwt_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(b64url_decode(token.split(".")[1]))
    return claims


async def initialise(
    http: aiohttp.ClientSession, fake: FakeTransactionLink, definition: str = "def-1", **extra: Any
) -> dict[str, Any]:
    body = {"workflowDefinitionId": definition, "locale": "en", "parameters": {}, **extra}
    status, payload, _ = await call(http, fake, "POST", "/workflows", json_body=body)
    assert status == 200, payload
    result: dict[str, Any] = payload
    return result


async def poll(http: aiohttp.ClientSession, fake: FakeTransactionLink, execution_id: str) -> str:
    status, payload, _ = await call(http, fake, "GET", f"/workflows/{execution_id}")
    assert status == 200, payload
    return str(payload["status"])


# -- authentication ------------------------------------------------------------------------


async def test_authorize_then_bearer(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    creds = {"key": fake.api_key, "secret": fake.api_secret}
    status, tokens, resp = await call(
        http, fake, "POST", "/auth/authorize", json_body=creds, headers={}
    )
    assert status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert tokens["tokenType"] == "Bearer"
    assert tokens["expiryDuration"] == 3600
    header = json.loads(b64url_decode(tokens["accessToken"].split(".")[0]))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = jwt_claims(tokens["accessToken"])
    assert {"sub", "iat", "exp", "jti"} <= claims.keys()
    assert claims["exp"] - claims["iat"] in (3599, 3600)
    assert abs(claims["iat"] - time.time()) < 5

    bearer = {"Authorization": f"Bearer {tokens['accessToken']}"}
    execution = await initialise(http, fake)
    status, _, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}", headers=bearer)
    assert status == 200
    status, payload, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}", headers={})
    assert status == 401
    assert_error_response(payload)
    # A token with a forged signature is refused.
    forged = tokens["accessToken"][:-2] + (
        "AA" if not tokens["accessToken"].endswith("AA") else "BB"
    )
    status, _, _ = await call(
        http, fake, "GET", "/workflows/x", headers={"Authorization": f"Bearer {forged}"}
    )
    assert status == 401


async def test_authorize_refusals(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    status, payload, _ = await call(
        http,
        fake,
        "POST",
        "/auth/authorize",
        json_body={"key": fake.api_key, "secret": "wrong"},
        headers={},
    )
    assert status == 401
    assert_error_response(payload)
    async with http.post(
        fake.base_url + "/auth/authorize",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert_error_response(await resp.json())
    async with http.post(
        fake.base_url + "/auth/authorize", data=b"key=a", headers={"Content-Type": "text/plain"}
    ) as resp:
        assert resp.status == 415
        assert_error_response(await resp.json())


async def test_org_token(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    assert fake.org_token.startswith("tot_")
    status, _, _ = await call(http, fake, "POST", "/parameters", json_body={"a": 1})
    assert status == 200
    # The organization token goes without "Bearer"; with it, it is refused.
    bearer_org = {"Authorization": f"Bearer {fake.org_token}"}
    status, _, _ = await call(http, fake, "POST", "/parameters", json_body={}, headers=bearer_org)
    assert status == 401


async def test_refresh_rotates(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    creds = {"key": fake.api_key, "secret": fake.api_secret}
    _, first, _ = await call(http, fake, "POST", "/auth/authorize", json_body=creds, headers={})
    status, second, _ = await call(
        http,
        fake,
        "POST",
        "/auth/refresh",
        json_body={"refreshToken": first["refreshToken"]},
        headers={},
    )
    assert status == 200
    assert set(second) == {"accessToken", "refreshToken", "expiryDuration", "tokenType"}
    assert second["refreshToken"] != first["refreshToken"]
    assert second["accessToken"] != first["accessToken"]
    status, payload, _ = await call(
        http,
        fake,
        "POST",
        "/auth/refresh",
        json_body={"refreshToken": first["refreshToken"]},
        headers={},
    )
    assert status == 401
    assert_error_response(payload)
    status, _, _ = await call(
        http, fake, "POST", "/auth/refresh", json_body={"refreshToken": "rt_unknown"}, headers={}
    )
    assert status == 401
    status, _, _ = await call(http, fake, "POST", "/auth/refresh", json_body={}, headers={})
    assert status == 400

    fake.revoke_refresh_tokens()
    status, _, _ = await call(
        http,
        fake,
        "POST",
        "/auth/refresh",
        json_body={"refreshToken": second["refreshToken"]},
        headers={},
    )
    assert status == 401


async def test_refresh_token_reusable_when_not_single_use(http: aiohttp.ClientSession) -> None:
    async with FakeTransactionLink(refresh_token_single_use=False) as fake:
        creds = {"key": fake.api_key, "secret": fake.api_secret}
        _, tokens, _ = await call(
            http, fake, "POST", "/auth/authorize", json_body=creds, headers={}
        )
        for _ in range(2):
            status, again, _ = await call(
                http,
                fake,
                "POST",
                "/auth/refresh",
                json_body={"refreshToken": tokens["refreshToken"]},
                headers={},
            )
            assert status == 200
            assert again["refreshToken"] == tokens["refreshToken"]


async def test_expired_access_tokens(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    creds = {"key": fake.api_key, "secret": fake.api_secret}
    _, tokens, _ = await call(http, fake, "POST", "/auth/authorize", json_body=creds, headers={})
    bearer = {"Authorization": f"Bearer {tokens['accessToken']}"}
    status, _, _ = await call(http, fake, "POST", "/parameters", json_body={}, headers=bearer)
    assert status == 200
    fake.expire_access_tokens()
    status, payload, _ = await call(http, fake, "POST", "/parameters", json_body={}, headers=bearer)
    assert status == 401
    assert_error_response(payload)
    # The refresh token survives; a fresh access token works.
    _, renewed, _ = await call(
        http,
        fake,
        "POST",
        "/auth/refresh",
        json_body={"refreshToken": tokens["refreshToken"]},
        headers={},
    )
    bearer = {"Authorization": f"Bearer {renewed['accessToken']}"}
    status, _, _ = await call(http, fake, "POST", "/parameters", json_body={}, headers=bearer)
    assert status == 200

    # A lifetime of 0 mints tokens whose exp has already passed.
    fake.set_access_token_lifetime(0)
    _, dead, _ = await call(http, fake, "POST", "/auth/authorize", json_body=creds, headers={})
    assert dead["expiryDuration"] == 0
    claims = jwt_claims(dead["accessToken"])
    assert claims["exp"] <= time.time()
    bearer = {"Authorization": f"Bearer {dead['accessToken']}"}
    status, _, _ = await call(http, fake, "POST", "/parameters", json_body={}, headers=bearer)
    assert status == 401


async def test_expiry_duration_can_be_left_out(http: aiohttp.ClientSession) -> None:
    async with FakeTransactionLink(
        include_expiry_duration=False, access_token_lifetime=120
    ) as fake:
        creds = {"key": fake.api_key, "secret": fake.api_secret}
        _, tokens, _ = await call(
            http, fake, "POST", "/auth/authorize", json_body=creds, headers={}
        )
        assert "expiryDuration" not in tokens
        claims = jwt_claims(tokens["accessToken"])
        assert 118 <= claims["exp"] - time.time() <= 120


# -- cases, parameters, v1 -----------------------------------------------------------------


async def test_create_case(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    body = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "phone": {"countryCode": "+44", "number": "123"},
        "companyName": "Engines Ltd",
        "documents": [{"resourceId": "r1", "resourceName": "id.pdf", "resourcePath": "/d/r1"}],
    }
    status, case, _ = await call(http, fake, "POST", "/cases", json_body=body)
    assert status == 201
    assert {"caseId", "partyId", "createdDate", "partyDetails"} <= case.keys()
    assert case["createdDate"].endswith("Z")
    dt.datetime.fromisoformat(case["createdDate"].replace("Z", "+00:00"))
    personal = case["partyDetails"]["personal"]
    assert personal["firstName"] == "Ada"
    assert personal["phone"]["number"] == "123"
    assert case["partyDetails"]["business"]["companyName"] == "Engines Ltd"
    assert case["partyDetails"]["documents"] == body["documents"]
    assert fake.cases[case["caseId"]] == case


async def test_parameters(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    status, payload, _ = await call(http, fake, "POST", "/parameters", json_body={"amount": 10})
    assert status == 200
    assert set(payload) == {"id"}
    assert fake.parameter_sets[payload["id"]] == {"amount": 10}
    status, payload, _ = await call(http, fake, "POST", "/parameters", json_body=[1, 2])
    assert status == 400
    assert_error_response(payload)


async def test_parameters_id_key(http: aiohttp.ClientSession) -> None:
    async with FakeTransactionLink(parameters_id_key="parametersId") as fake:
        _, payload, _ = await call(http, fake, "POST", "/parameters", json_body={})
        assert set(payload) == {"parametersId"}


async def test_v1_run(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    _, case, _ = await call(http, fake, "POST", "/cases", json_body={})
    _, params, _ = await call(http, fake, "POST", "/parameters", json_body={"k": "v"})
    body = {"caseId": case["caseId"], "workflowDefinitionId": "wd", "parametersId": params["id"]}
    status, run, _ = await call(http, fake, "POST", "/workflows/run", json_body=body)
    assert status == 200
    assert set(run) == {"id", "caseId", "status"}
    assert run["caseId"] == case["caseId"]
    assert run["status"] == "CREATED"
    assert fake.executions[run["id"]]["status"] == "CREATED"
    status, found, _ = await call(http, fake, "GET", f"/workflows/{run['id']}")
    assert status == 200
    assert found["caseId"] == case["caseId"]
    assert found["parameters"] == {"k": "v"}
    assert found["status"] == "COMPLETED"

    status, payload, _ = await call(
        http,
        fake,
        "POST",
        "/workflows/run",
        json_body={"caseId": "nope", "workflowDefinitionId": "wd"},
    )
    assert status == 404
    assert_error_response(payload)
    status, _, _ = await call(
        http, fake, "POST", "/workflows/run", json_body={"caseId": case["caseId"]}
    )
    assert status == 400


# -- v3 workflows --------------------------------------------------------------------------


async def test_initialise_background(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    execution = await initialise(
        http,
        fake,
        "def-bg",
        parameters={"x": 1},
        expiresAt=expires.isoformat(),
        recordId="rec-1",
    )
    expected = {
        "id",
        "workflowDefinitionId",
        "executionType",
        "uiOptions",
        "locale",
        "expiresAt",
        "revision",
        "name",
        "parameters",
        "executionVersion",
        "status",
        "workspaceId",
        "origin",
        "recordId",
    }
    assert set(execution) == expected
    assert execution["executionType"] == "BACKGROUND"
    assert execution["status"] == "INITIALISED"
    assert execution["origin"] == {"type": "API"}
    assert execution["uiOptions"] == {}
    assert execution["parameters"] == {"x": 1}
    assert execution["recordId"] == "rec-1"
    echoed = dt.datetime.fromisoformat(execution["expiresAt"].replace("Z", "+00:00"))
    assert abs((echoed - expires).total_seconds()) < 0.01
    assert fake.executions[execution["id"]]["status"] == "INITIALISED"


async def test_initialise_interactive(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.define_workflow("def-ui", statuses=("RUNNING", "COMPLETED"), interactive=True)
    execution = await initialise(http, fake, "def-ui")
    assert execution["executionType"] == "INTERACTIVE"
    assert execution["link"].startswith("https://")
    assert isinstance(execution["token"], str)
    assert len(execution["token"]) > 16
    _, found, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}")
    assert found["token"] == execution["token"]
    assert found["link"] == execution["link"]


@pytest.mark.parametrize(
    "change",
    [
        {"locale": None},
        {"locale": ""},
        {"workflowDefinitionId": None},
        {"parameters": None},
        {"parameters": [1]},
        {"expiresAt": "tomorrow"},
        {"expiresAt": "2030-01-01T00:00:00"},  # no offset
        {"expiresAt": "+10min"},
        {"expiresAt": "+31d"},
        {"expiresAt": "-1h"},
        {"recordId": 5},
    ],
)
async def test_initialise_validation(
    fake: FakeTransactionLink, http: aiohttp.ClientSession, change: dict[str, Any]
) -> None:
    body: dict[str, Any] = {"workflowDefinitionId": "d", "locale": "en", "parameters": {}}
    now = dt.datetime.now(dt.timezone.utc)
    relative = {
        "+10min": now + dt.timedelta(minutes=10),
        "+31d": now + dt.timedelta(days=31),
        "-1h": now - dt.timedelta(hours=1),
    }
    for key, value in change.items():
        if value is None:
            body.pop(key)
        elif isinstance(value, str) and value in relative:
            body[key] = relative[value].isoformat()
        else:
            body[key] = value
    status, payload, _ = await call(http, fake, "POST", "/workflows", json_body=body)
    assert status == 400
    assert_error_response(payload)
    assert fake.executions == {}


async def test_initialise_expiry_bounds_accepted(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    for ahead in (dt.timedelta(minutes=31), dt.timedelta(days=29, hours=23)):
        stamp = (now + ahead).strftime("%Y-%m-%dT%H:%M:%SZ")
        execution = await initialise(http, fake, expiresAt=stamp)
        assert execution["expiresAt"].endswith("Z")


async def test_progress_by_polls(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.define_workflow(
        "def-1", statuses=("RUNNING", "AWAITING", "SOMETHING_NEW", "PAUSED", "COMPLETED")
    )
    execution = await initialise(http, fake, "def-1")
    seen = [await poll(http, fake, execution["id"]) for _ in range(6)]
    assert seen == ["RUNNING", "AWAITING", "SOMETHING_NEW", "PAUSED", "COMPLETED", "COMPLETED"]
    # Reading the snapshot is not a poll.
    assert fake.executions[execution["id"]]["status"] == "COMPLETED"


async def test_polls_per_status(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.define_workflow("slow", statuses=("RUNNING", "FAILED"), polls_per_status=2, result=None)
    execution = await initialise(http, fake, "slow")
    seen = [await poll(http, fake, execution["id"]) for _ in range(5)]
    assert seen == ["INITIALISED", "RUNNING", "RUNNING", "FAILED", "FAILED"]
    status, _, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
    assert status == 404


async def test_progress_by_time(http: aiohttp.ClientSession) -> None:
    now = [100.0]
    async with FakeTransactionLink(clock=lambda: now[0]) as fake:
        fake.define_workflow(
            "timed", statuses=("RUNNING", "COMPLETED"), seconds_per_status=10, result={"ok": 1}
        )
        execution = await initialise(http, fake, "timed")
        assert await poll(http, fake, execution["id"]) == "INITIALISED"
        assert await poll(http, fake, execution["id"]) == "INITIALISED"
        now[0] += 10
        assert await poll(http, fake, execution["id"]) == "RUNNING"
        status, _, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
        assert status == 404
        now[0] += 10
        assert fake.executions[execution["id"]]["status"] == "COMPLETED"
        status, result, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
        assert (status, result) == (200, {"ok": 1})


async def test_default_script(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    execution = await initialise(http, fake, "never-defined")
    assert await poll(http, fake, execution["id"]) == "COMPLETED"
    status, result, resp = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
    assert status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert isinstance(result, dict)
    assert result


async def test_unknown_execution(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    for method, path in [
        ("GET", "/workflows/missing"),
        ("POST", "/workflows/missing/cancel"),
        ("GET", "/workflows/missing/result"),
    ]:
        status, payload, _ = await call(http, fake, method, path)
        assert status == 404
        assert_error_response(payload)


async def test_cancel(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.define_workflow("long", statuses=("RUNNING", "COMPLETED"), polls_per_status=100)
    execution = await initialise(http, fake, "long")
    assert await poll(http, fake, execution["id"]) == "INITIALISED"
    status, body, _ = await call(http, fake, "POST", f"/workflows/{execution['id']}/cancel")
    assert (status, body) == (200, None)
    assert await poll(http, fake, execution["id"]) == "CANCELLED"
    status, _, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
    assert status == 404

    done = await initialise(http, fake, "quick")
    assert await poll(http, fake, done["id"]) == "COMPLETED"
    status, _, _ = await call(http, fake, "POST", f"/workflows/{done['id']}/cancel")
    assert status == 200
    assert await poll(http, fake, done["id"]) == "COMPLETED"


async def test_results(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.define_workflow("r", statuses=("RUNNING", "COMPLETED"), result=lambda eid: {"id": eid})
    execution = await initialise(http, fake, "r")
    eid = execution["id"]
    status, payload, _ = await call(http, fake, "GET", f"/workflows/{eid}/result")
    assert status == 404
    assert_error_response(payload)
    await poll(http, fake, eid)
    status, _, _ = await call(http, fake, "GET", f"/workflows/{eid}/result")
    assert status == 404
    await poll(http, fake, eid)
    status, payload, _ = await call(http, fake, "GET", f"/workflows/{eid}/result")
    assert (status, payload) == (200, {"id": eid})

    fake.set_result(eid, b'{"raw": true}')
    status, payload, _ = await call(http, fake, "GET", f"/workflows/{eid}/result")
    assert (status, payload) == (200, {"raw": True})
    fake.set_result(eid, None)
    status, _, _ = await call(http, fake, "GET", f"/workflows/{eid}/result")
    assert status == 404


async def test_set_status(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.define_workflow("pinned", statuses=("RUNNING", "COMPLETED"), result={"a": 1})
    execution = await initialise(http, fake, "pinned")
    fake.set_status(execution["id"], "PAUSED")
    assert [await poll(http, fake, execution["id"]) for _ in range(3)] == ["PAUSED"] * 3
    fake.set_status(execution["id"], "COMPLETED")
    _, result, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
    assert result == {"a": 1}
    with pytest.raises(KeyError):
        fake.set_status("missing", "COMPLETED")


# -- routing, journal ----------------------------------------------------------------------


async def test_unknown_route_and_method(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    status, payload, resp = await call(http, fake, "GET", "/nowhere")
    assert status == 404
    assert resp.headers["Content-Type"].startswith("application/json")
    assert_error_response(payload)
    status, payload, _ = await call(http, fake, "DELETE", "/cases")
    assert status == 405
    assert_error_response(payload)


async def test_journal(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    execution = await initialise(http, fake, "j")
    async with http.get(
        f"{fake.base_url}/workflows/{execution['id']}?trace=1", headers=org(fake)
    ) as resp:
        assert resp.status == 200
    await call(http, fake, "GET", f"/workflows/{execution['id']}/result")

    first, second, third = fake.journal
    assert (first.method, first.path, first.status) == ("POST", "/workflows", 200)
    assert first.json()["workflowDefinitionId"] == "j"
    assert first.headers["Authorization"] == fake.org_token
    assert first.started <= (first.finished or 0.0) <= time.monotonic()
    assert (second.query, second.body) == ("trace=1", b"")
    assert fake.count("GET", "/workflows/*") == 1
    assert fake.count("GET", "/workflows/**") == 2
    assert fake.count("*", None) == 3
    assert [e.path for e in fake.requests(path_glob="/workflows/*/result")] == [third.path]
    assert fake.requests("post") == [first]
    assert fake.in_flight() == 0
    assert fake.max_in_flight() == 1


async def test_next_request_waits_for_a_matching_one_or_says_none_came(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await call(http, fake, "GET", "/workflows/x")  # does not match
        await initialise(http, fake, "j")

    began = time.monotonic()
    sender = asyncio.ensure_future(later())
    entry = await fake.next_request("POST", "/workflows", timeout=10)
    assert time.monotonic() - began < 5  # woken by the request, not by the timeout
    assert entry is not None
    assert (entry.method, entry.path) == ("POST", "/workflows")
    await sender
    began = time.monotonic()
    assert await fake.next_request("POST", "/workflows", timeout=0.2) is None
    assert time.monotonic() - began >= 0.2
    for wrong in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            await fake.next_request(timeout=wrong)


def test_journal_limit_keeps_recent_and_unfinished() -> None:
    journal = Journal(limit=4)
    stuck = journal.begin("GET", "/stuck", "", {})
    for i in range(20):
        journal.finish(journal.begin("GET", f"/r/{i}", "", {}))
    assert journal.entries[0] is stuck
    assert 5 <= len(journal.entries) <= 8
    assert journal.entries[-1].path == "/r/19"
    assert journal.in_flight() == 1


async def test_max_in_flight_with_delay(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    execution = await initialise(http, fake, "c")
    path = f"/workflows/{execution['id']}"
    fake.inject("GET", "/workflows/*", delay=0.2, times=None)

    async def probe() -> int:
        await asyncio.sleep(0.1)
        return fake.in_flight("GET", "/workflows/*")

    results = await asyncio.gather(*(poll(http, fake, execution["id"]) for _ in range(5)), probe())
    assert results[-1] == 5
    assert fake.max_in_flight("GET", "/workflows/*") == 5
    assert fake.max_in_flight("POST", "/workflows") == 1
    assert fake.in_flight("GET", path) == 0
    assert fake.faults_fired["delay"] == 5


# -- faults --------------------------------------------------------------------------------


async def test_status_fault_with_retry_after(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    rule = fake.inject("POST", "/workflows", status=429, retry_after=1, times=2)
    assert isinstance(rule, FaultRule)
    body = {"workflowDefinitionId": "d", "locale": "en", "parameters": {}}
    for _ in range(2):
        status, payload, resp = await call(http, fake, "POST", "/workflows", json_body=body)
        assert status == 429
        assert resp.headers["Retry-After"] == "1"
        assert_error_response(payload)
    assert fake.executions == {}
    assert rule.remaining == 0
    status, _, resp = await call(http, fake, "POST", "/workflows", json_body=body)
    assert status == 200
    assert "Retry-After" not in resp.headers
    assert fake.faults_fired["status"] == 2
    assert fake.faults_fired["retry_after"] == 2
    assert [e.status for e in fake.requests("POST", "/workflows")] == [429, 429, 200]
    assert fake.journal[0].faults == ("status", "retry_after")


async def test_fault_rules_order_and_forever(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.inject("GET", "/nowhere", status=503, times=1)
    fake.inject(
        "GET", "/nowhere", status=502, retry_after="Wed, 21 Oct 2015 07:28:00 GMT", times=None
    )
    statuses = []
    for _ in range(3):
        status, _, resp = await call(http, fake, "GET", "/nowhere")
        statuses.append(status)
    assert statuses == [503, 502, 502]
    assert resp.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    fake.clear_faults()
    status, _, _ = await call(http, fake, "GET", "/nowhere")
    assert status == 404


async def test_body_fault_and_retry_after_on_real_answer(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.inject(
        "POST",
        "/parameters",
        status=502,
        body=b"<html>bad gateway</html>",
        content_type="text/html",
    )
    async with http.post(fake.base_url + "/parameters", json={}, headers=org(fake)) as resp:
        assert resp.status == 502
        assert resp.headers["Content-Type"] == "text/html"
        assert await resp.read() == b"<html>bad gateway</html>"
    execution = await initialise(http, fake, "ra")
    fake.inject("GET", "/workflows/*", retry_after=7.5)
    status, payload, resp = await call(http, fake, "GET", f"/workflows/{execution['id']}")
    assert status == 200
    assert payload["id"] == execution["id"]
    assert resp.headers["Retry-After"] == "7.5"


async def test_drop_before_body(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.inject("POST", "/workflows", drop="before_body")
    body = {"workflowDefinitionId": "d", "locale": "en", "parameters": {"pad": "x" * 100_000}}
    with pytest.raises(DROPPED):
        await call(http, fake, "POST", "/workflows", json_body=body)
    (entry,) = fake.journal
    assert entry.status is None
    assert entry.body == b""
    assert entry.finished is not None
    assert fake.executions == {}
    assert fake.faults_fired["drop_before_body"] == 1
    # The next request, on a new connection, works.
    await initialise(http, fake)


async def test_drop_after_body_creates_nothing(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.inject("POST", "/workflows", drop="after_body")
    body = {"workflowDefinitionId": "d", "locale": "en", "parameters": {}}
    with pytest.raises(DROPPED):
        await call(http, fake, "POST", "/workflows", json_body=body)
    (entry,) = fake.journal
    assert entry.status is None
    assert entry.json() == body
    assert fake.executions == {}
    assert fake.faults_fired["drop_after_body"] == 1


async def test_drop_on_get_is_retried_once_by_aiohttp(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    # aiohttp itself resends an idempotent request once after a dropped connection, so a
    # GET only fails when two drops in a row are injected.
    fake.inject("GET", "/nowhere", drop="before_body", times=2)
    with pytest.raises(DROPPED):
        await call(http, fake, "GET", "/nowhere")
    assert [e.status for e in fake.journal] == [None, None]


async def test_delay(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.inject("POST", "/parameters", delay=0.2)
    started = time.monotonic()
    status, _, _ = await call(http, fake, "POST", "/parameters", json_body={"a": 1})
    assert status == 200
    assert time.monotonic() - started >= 0.2
    # The handler ran before the delay: the parameters exist.
    assert len(fake.parameter_sets) == 1


async def test_delay_honours_client_disconnect(
    fake: FakeTransactionLink, http: aiohttp.ClientSession
) -> None:
    fake.inject("POST", "/parameters", delay=30)
    timeout = aiohttp.ClientTimeout(total=0.2)
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            fake.base_url + "/parameters", json={}, headers=org(fake), timeout=timeout
        ):
            pass
    for _ in range(100):
        if fake.in_flight() == 0:
            break
        await asyncio.sleep(0.01)
    (entry,) = fake.journal
    assert fake.in_flight() == 0
    assert entry.status is None
    assert entry.finished is not None


async def test_truncate(fake: FakeTransactionLink, http: aiohttp.ClientSession) -> None:
    fake.define_workflow("big", result={"items": list(range(1000))})
    execution = await initialise(http, fake, "big")
    await poll(http, fake, execution["id"])
    fake.inject("GET", "/workflows/*/result", truncate_at=100)
    async with http.get(
        f"{fake.base_url}/workflows/{execution['id']}/result", headers=org(fake)
    ) as resp:
        assert resp.status == 200
        full = int(resp.headers["Content-Length"])
        assert full > 100
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert fake.faults_fired["truncate"] == 1
    # Without the fault the same result comes whole.
    status, result, _ = await call(http, fake, "GET", f"/workflows/{execution['id']}/result")
    assert status == 200
    assert len(json.dumps(result)) == full


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError, match="needs"):
        FaultRule("GET", "/x")
    with pytest.raises(ValueError, match="dropped"):
        FaultRule("GET", "/x", drop="before_body", status=500)
    with pytest.raises(ValueError, match="drop must"):
        FaultRule("GET", "/x", drop="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        FaultRule("GET", "/x", status=500, times=0)


def test_path_globs() -> None:
    assert path_matches("/workflows/*", "/workflows/abc")
    assert not path_matches("/workflows/*", "/workflows/abc/result")
    assert path_matches("/workflows/**", "/workflows/abc/result")
    assert path_matches("/workflows/*/result", "/workflows/abc/result")
    assert not path_matches("/workflows", "/workflows/run")
    assert path_matches(None, "/anything")


def test_workflow_progress_is_pure() -> None:
    script = WorkflowScript(statuses=("RUNNING", "COMPLETED"), seconds_per_status=5)
    progress = WorkflowProgress(script, "INITIALISED", started_at=0.0)
    assert [progress.status(t) for t in (0, 4.9, 5, 9.9, 10, 100)] == [
        "INITIALISED",
        "INITIALISED",
        "RUNNING",
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
    ]
    assert not progress.cancel(10)
    assert progress.cancel(6)
    assert progress.status(100) == "CANCELLED"
    with pytest.raises(ValueError, match="statuses"):
        WorkflowScript(statuses=())


# -- lifecycle -----------------------------------------------------------------------------


async def test_clean_shutdown_with_open_and_pending_connections() -> None:
    fake = FakeTransactionLink()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    await fake.start()
    fake.inject("POST", "/parameters", delay=30)
    async with aiohttp.ClientSession() as http:
        # A keep-alive connection left idle in the pool, and one request stuck in a delay.
        await call(http, fake, "GET", "/nowhere")
        pending = asyncio.ensure_future(call(http, fake, "POST", "/parameters", json_body={}))
        for _ in range(500):
            if fake.in_flight("POST", "/parameters"):
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await fake.aclose()
        assert time.monotonic() - started < 1.5
        with pytest.raises(DROPPED):
            await pending
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(http, fake, "GET", "/nowhere")
    await fake.aclose()
    with pytest.raises(RuntimeError):
        await fake.start()


async def test_serve_command() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transactionlink_async.testing",
        "serve",
        "--access-token-lifetime",
        "60",
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        info = json.loads(line)
        assert set(info) == {"base_url", "org_token", "api_key", "api_secret", "s3_base_url"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                info["base_url"] + "/auth/authorize",
                json={"key": info["api_key"], "secret": info["api_secret"]},
            ) as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["expiryDuration"] == 60
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
