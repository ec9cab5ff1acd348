"""The fake API's state and route handlers, speaking raw JSON like the real service."""

from __future__ import annotations

import datetime as dt
import heapq
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._auth import TokenStore
from ._http import (
    JSON_CONTENT_TYPE,
    ApiError,
    format_timestamp,
    json_response,
    parse_timestamp,
    read_json_object,
)
from ._s3 import FakeS3, S3Result
from ._webhooks import Keyring
from ._workflows import Execution, WorkflowProgress, WorkflowScript

__all__ = ["FakeApi"]

_MIN_EXPIRY = dt.timedelta(minutes=30)
_MAX_EXPIRY = dt.timedelta(days=30)
# The client checks the window before sending; this slack keeps a value it accepted a
# moment ago from flipping to 400 on the way over.
_EXPIRY_SLACK = dt.timedelta(seconds=60)
# The schemas require a date-time `expiresAt` (never null): an execution launched without
# one gets the longest the API allows (the vendor does not say what it picks).
_DEFAULT_EXPIRY = _MAX_EXPIRY

_PERSONAL_FIELDS = ("firstName", "lastName", "personalNumber", "email", "phone")
_BUSINESS_FIELDS = ("companyName", "companyNumber", "companyAddress")


def _wall_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _required_text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{key} is required and must be a non-empty string")
    return value


def _optional_text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string")
    return value


class FakeApi:
    """Cases, parameter sets, workflow executions and the handlers that serve them."""

    def __init__(
        self,
        tokens: TokenStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        parameters_id_key: str = "id",
        inline_result_limit: int = 9 * 1024 * 1024,
        s3: FakeS3 | None = None,
    ) -> None:
        self.tokens = tokens
        self.s3 = s3
        self.clock = clock
        self.parameters_id_key = parameters_id_key
        self.inline_result_limit = inline_result_limit
        self.workspace_id = str(uuid.uuid4())
        self.cases: dict[str, dict[str, Any]] = {}
        self.parameter_sets: dict[str, dict[str, Any]] = {}
        self.scripts: dict[str, WorkflowScript] = {}
        self.default_script = WorkflowScript()
        self._executions: dict[str, Execution] = {}
        self.keyring = Keyring()
        #: Called with an execution's id when its status may have changed (polls, cancels,
        #: set_status), or with None when any may have.
        self.status_listeners: list[Callable[[str | None], None]] = []
        # (clock time, id) of every step a clock-driven execution will take, soonest first.
        self._timeline: list[tuple[float, str]] = []
        # The result object each large inline result was stored for, by execution id.
        self._stored_results: dict[str, object] = {}

    # -- configuration -------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/auth/authorize", self.authorize),
            web.post("/auth/refresh", self.refresh),
            web.post("/cases", self.create_case),
            web.post("/parameters", self.create_parameters),
            web.post("/workflows/run", self.run_workflow),
            web.post("/workflows", self.initialise_workflow),
            web.get("/workflows/{id}", self.get_workflow),
            web.post("/workflows/{id}/cancel", self.cancel_workflow),
            web.get("/workflows/{id}/result", self.get_result),
            web.get("/auth/webhooks/key/{kid}", self.webhook_key),
        ]

    def execution(self, execution_id: str) -> Execution:
        """The execution with this id; KeyError names it when there is none."""
        try:
            return self._executions[execution_id]
        except KeyError:
            raise KeyError(f"no workflow execution {execution_id!r}") from None

    def status_may_have_changed(self, execution_id: str | None = None) -> None:
        for listener in self.status_listeners:
            listener(execution_id)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every execution's current JSON, without counting as a poll."""
        now = self.clock()
        return {eid: e.render(e.progress.status(now)) for eid, e in self._executions.items()}

    def current(self, execution_id: str) -> dict[str, Any] | None:
        """One execution's current JSON (None if unknown), without counting as a poll."""
        execution = self._executions.get(execution_id)
        if execution is None:
            return None
        return execution.render(execution.progress.status(self.clock()))

    def due_steps(self) -> list[str]:
        """The ids of clock-driven executions that took a step since the last call."""
        now = self.clock()
        due = []
        while self._timeline and self._timeline[0][0] <= now:
            due.append(heapq.heappop(self._timeline)[1])
        return due

    def next_step_at(self) -> float | None:
        """The clock time of the next step a clock-driven execution takes (None: none left)."""
        return self._timeline[0][0] if self._timeline else None

    def finish_times(self) -> dict[str, float]:
        """`finishes_at` of every clock-driven execution, by id."""
        times = {}
        for execution_id, execution in self._executions.items():
            when = execution.progress.finishes_at
            if when is not None:
                times[execution_id] = when
        return times

    def finishes_at(self, execution_id: str) -> float | None:
        """When a clock-driven execution reaches its last status (server clock; None: by polls)."""
        return self.execution(execution_id).progress.finishes_at

    # -- authentication ------------------------------------------------------------------

    def _require_auth(self, request: web.Request) -> None:
        if not self.tokens.accepts(request.headers.get("Authorization")):
            raise ApiError(401, "The access token is missing, invalid or expired")

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        payload = read_json_object(request, await request.read())
        answer = self.tokens.authorize(payload.get("key"), payload.get("secret"))
        if answer is None:
            raise ApiError(401, "Invalid API key or secret")
        return json_response(answer)

    async def refresh(self, request: web.Request) -> web.StreamResponse:
        payload = read_json_object(request, await request.read())
        token = payload.get("refreshToken")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "refreshToken is required")
        answer = self.tokens.refresh(token)
        if answer is None:
            raise ApiError(401, "The refresh token is unknown, used or revoked")
        return json_response(answer)

    # -- cases and parameters ------------------------------------------------------------

    async def create_case(self, request: web.Request) -> web.StreamResponse:
        self._require_auth(request)
        payload = read_json_object(request, await request.read())
        documents = payload.get("documents", [])
        if not isinstance(documents, list):
            raise ApiError(400, "documents must be a list")
        case_id = str(uuid.uuid4())
        case: dict[str, Any] = {
            "caseId": case_id,
            "partyId": str(uuid.uuid4()),
            "createdDate": format_timestamp(_wall_now()),
            "partyDetails": {
                "personal": {key: payload.get(key) for key in _PERSONAL_FIELDS},
                "business": {key: payload.get(key) for key in _BUSINESS_FIELDS},
                "documents": documents,
            },
        }
        self.cases[case_id] = case
        return json_response(case, status=201)

    async def create_parameters(self, request: web.Request) -> web.StreamResponse:
        self._require_auth(request)
        payload = read_json_object(request, await request.read())
        parameters_id = str(uuid.uuid4())
        self.parameter_sets[parameters_id] = payload
        return json_response({self.parameters_id_key: parameters_id})

    # -- workflows -----------------------------------------------------------------------

    def _new_execution(
        self, definition_id: str, initial_status: str, document: dict[str, Any]
    ) -> Execution:
        script = self.scripts.get(definition_id, self.default_script)
        execution_id = document["id"]
        execution = Execution(
            id=execution_id,
            document=document,
            progress=WorkflowProgress(script, initial_status, started_at=self.clock()),
        )
        self._executions[execution_id] = execution
        step_times = execution.progress.step_times()
        for when in step_times:
            heapq.heappush(self._timeline, (when, execution_id))
        if step_times:
            # Whoever watches for changes must learn that one is now scheduled.
            self.status_may_have_changed(execution_id)
        return execution

    def _base_document(self, definition_id: str, locale: str) -> dict[str, Any]:
        script = self.scripts.get(definition_id, self.default_script)
        return {
            "id": str(uuid.uuid4()),
            "workspaceId": self.workspace_id,
            "workflowDefinitionId": definition_id,
            "name": script.name or definition_id,
            "revision": "1",
            "locale": locale,
            "expiresAt": format_timestamp(_wall_now() + _DEFAULT_EXPIRY),
            "uiOptions": {},
            "executionType": "INTERACTIVE" if script.interactive else "BACKGROUND",
            "executionVersion": 1,
            "parameters": {},
            "origin": {"type": "API"},
        }

    async def run_workflow(self, request: web.Request) -> web.StreamResponse:
        """The v1 start: an existing case, a definition, optional stored parameters."""
        self._require_auth(request)
        payload = read_json_object(request, await request.read())
        case_id = _required_text(payload, "caseId")
        definition_id = _required_text(payload, "workflowDefinitionId")
        parameters_id = _optional_text(payload, "parametersId")
        if case_id not in self.cases:
            raise ApiError(404, f"Case {case_id} does not exist")
        if parameters_id is not None and parameters_id not in self.parameter_sets:
            raise ApiError(404, f"Parameters {parameters_id} do not exist")
        document = self._base_document(definition_id, "en")
        document["executionType"] = "BACKGROUND"
        document["caseId"] = case_id
        if parameters_id is not None:
            document["parameters"] = self.parameter_sets[parameters_id]
        execution = self._new_execution(definition_id, "CREATED", document)
        return json_response({"id": execution.id, "caseId": case_id, "status": "CREATED"})

    async def initialise_workflow(self, request: web.Request) -> web.StreamResponse:
        """The v3 start: a background or interactive execution."""
        self._require_auth(request)
        payload = read_json_object(request, await request.read())
        definition_id = _required_text(payload, "workflowDefinitionId")
        locale = _required_text(payload, "locale")
        parameters = payload.get("parameters")
        if not isinstance(parameters, dict):
            raise ApiError(400, "parameters is required and must be an object (may be empty)")
        expires_at = self._checked_expiry(_optional_text(payload, "expiresAt"))
        record_id = _optional_text(payload, "recordId")

        document = self._base_document(definition_id, locale)
        document["parameters"] = parameters
        if expires_at is not None:
            document["expiresAt"] = expires_at
        if record_id is not None:
            document["recordId"] = record_id
        if document["executionType"] == "INTERACTIVE":
            document["link"] = f"https://app.transactionlink.io/workflow/{document['id']}"
            document["token"] = secrets.token_urlsafe(24)
        execution = self._new_execution(definition_id, "INITIALISED", document)
        return json_response(execution.render("INITIALISED"))

    @staticmethod
    def _checked_expiry(text: str | None) -> str | None:
        if text is None:
            return None
        try:
            moment = parse_timestamp(text)
        except ValueError:
            raise ApiError(400, "expiresAt must be an ISO 8601 date-time with an offset") from None
        ahead = moment - _wall_now()
        if not _MIN_EXPIRY - _EXPIRY_SLACK <= ahead <= _MAX_EXPIRY + _EXPIRY_SLACK:
            raise ApiError(400, "expiresAt must be between 30 minutes and 30 days from now")
        return format_timestamp(moment)

    def _lookup(self, request: web.Request) -> Execution:
        execution_id = request.match_info["id"]
        execution = self._executions.get(execution_id)
        if execution is None:
            raise ApiError(404, f"Workflow execution {execution_id} does not exist")
        return execution

    async def get_workflow(self, request: web.Request) -> web.StreamResponse:
        self._require_auth(request)
        execution = self._lookup(request)
        status = execution.progress.poll(self.clock())
        self.status_may_have_changed(execution.id)
        return json_response(execution.render(status))

    async def cancel_workflow(self, request: web.Request) -> web.StreamResponse:
        self._require_auth(request)
        execution = self._lookup(request)
        execution.cancel(self.clock())
        self.status_may_have_changed(execution.id)
        return web.Response(status=200)

    async def get_result(self, request: web.Request) -> web.StreamResponse:
        self._require_auth(request)
        execution = self._lookup(request)
        result = execution.result(self.clock())
        if result is None:
            raise ApiError(404, f"Workflow execution {execution.id} has no result")
        return self.result_response(execution, result)

    # -- webhook signing keys ------------------------------------------------------------

    async def webhook_key(self, request: web.Request) -> web.StreamResponse:
        """`GET /auth/webhooks/key/{kid}?pem=true|false`: PEM, or bare base64 DER."""
        self._require_auth(request)
        pem = request.query.get("pem", "false").lower()
        if pem not in ("true", "false"):
            raise ApiError(400, "pem must be true or false")
        kid = request.match_info["kid"]
        text = self.keyring.public_key_text(kid, pem=pem == "true")
        if text is None:
            raise ApiError(404, f"Webhook key {kid} does not exist")
        return web.Response(text=text, content_type="text/plain")

    def result_response(self, execution: Execution, result: object) -> web.StreamResponse:
        """The result inline, or (stored in S3, or over the inline limit) `{"$redirect": url}`."""
        if isinstance(result, S3Result):
            return self._redirect(result.key)
        body = result if isinstance(result, bytes) else json.dumps(result).encode()
        if len(body) <= self.inline_result_limit or self.s3 is None:
            return web.Response(body=body, headers={"Content-Type": JSON_CONTENT_TYPE})
        key = large_result_key(execution.id)
        if self._stored_results.get(execution.id) is not result:
            self.s3.put(key, body, encode_slash=True)
            self._stored_results[execution.id] = result
        return self._redirect(key)

    def _redirect(self, key: str) -> web.StreamResponse:
        if self.s3 is None:
            raise ApiError(500, "This fake has no S3 to store large results in")
        # A fresh URL on every call, as the real service does.
        return json_response({"$redirect": self.s3.presign(key)})

    def create_execution(self, definition_id: str, *, status: str, result: object) -> Execution:
        """An execution already in `status` with `result`, as if it had run."""
        document = self._base_document(definition_id, "en")
        execution = self._new_execution(definition_id, "INITIALISED", document)
        execution.progress.pin(status)
        execution.set_result(result)
        self.status_may_have_changed(execution.id)
        return execution


def large_result_key(execution_id: str) -> str:
    """Where a large result is stored: a key that needs quoting, like real-world keys do."""
    return f"results/{execution_id}/o'brien ~result.json"
