"""Workflow executions: v1 run, v3 initialise, get, cancel and results."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._batches.defaults import DEFAULT_LAUNCH_CONCURRENCY
from .._convert import unstructure
from .._download.defaults import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_WRITE_SIZE,
)
from .._handle import ClientHandle
from .._observe.operations import traced
from .._request import ApiRequest
from .._retry import PollPolicy, RetryMode
from .._threads import compute
from .._validate import (
    check_concurrency,
    check_expires_at,
    check_id,
    check_mapping,
    check_optional_str,
    check_text,
    utc_now,
)
from ..models import LaunchRequest, WorkflowExecution
from ._base import Resource

# Waiting, launching and results are imported at their first use: a client made for one
# kind of call does not load the others.
if TYPE_CHECKING:
    from .._batches.launch import LaunchBatch
    from .._batches.wait import WaitBatch, Waits
    from .._download.results import DownloadedResult, ProgressCallback, Results, ResultStream
    from ..journal import Journal

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "Workflows", "initialise_body"]


def initialise_body(request: LaunchRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON body of `POST /workflows`, after checking every argument."""
    check_text("workflow_definition_id", request.workflow_definition_id)
    check_text("locale", request.locale)
    if request.parameters is not None:
        check_mapping("parameters", request.parameters)
    if request.expires_at is not None:
        check_expires_at(request.expires_at, now=now or utc_now())
    if check_optional_str("record_id", request.record_id) is not None:
        check_text("record_id", request.record_id)
    # The converter writes camelCase, drops absent fields and sends `parameters` even when
    # empty, as the API requires; JSON-serialisability is checked by send(), before sending.
    body: dict[str, Any] = unstructure(request)
    return body


class Workflows(Resource):
    """Workflow executions."""

    def __init__(self, client: ClientHandle) -> None:
        super().__init__(client)
        self._result_calls: Results | None = None
        self._wait_calls: Waits | None = None

    @property
    def _results(self) -> Results:
        if self._result_calls is None:
            from .._download.results import Results

            self._result_calls = Results(self._client)
        return self._result_calls

    async def _results_off_loop(self) -> Results:
        """`_results`, its modules imported in a worker thread the first time.

        Imported on the loop, they would stop it for 15 ms (50 ms where no bytecode is
        cached) in the first request that needs them, which a web worker's other
        requests would feel; in a thread, the interpreter hands the GIL over meanwhile.
        """
        if self._result_calls is None:
            await compute(importlib.import_module, ".._download.results", __package__)
        return self._results

    @property
    def _waits(self) -> Waits:
        if self._wait_calls is None:
            from .._batches.wait import Waits

            self._wait_calls = Waits(self._client)
        return self._wait_calls

    async def run(
        self,
        *,
        workflow_definition_id: str,
        case_id: str,
        parameters_id: str | None = None,
    ) -> WorkflowExecution:
        """Start a v1 workflow for a case (`POST /workflows/run`)."""
        body = {
            "workflowDefinitionId": check_text("workflow_definition_id", workflow_definition_id),
            "caseId": check_text("case_id", case_id),
        }
        if parameters_id is not None:
            body["parametersId"] = check_text("parameters_id", parameters_id)
        request = ApiRequest(
            method="POST", path="/workflows/run", json=body, mode=RetryMode.CREATING
        )
        return await self._send_model(request, WorkflowExecution)

    async def initialise(
        self,
        *,
        workflow_definition_id: str,
        locale: str,
        parameters: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
        record_id: str | None = None,
    ) -> WorkflowExecution:
        """Start a v3 workflow execution (`POST /workflows`)."""
        launch = LaunchRequest(
            workflow_definition_id=workflow_definition_id,
            locale=locale,
            parameters=parameters,
            expires_at=expires_at,
            record_id=record_id,
        )
        return await self._initialise(initialise_body(launch))

    async def _initialise(self, body: Mapping[str, Any]) -> WorkflowExecution:
        request = ApiRequest(method="POST", path="/workflows", json=body, mode=RetryMode.CREATING)
        return await self._send_model(request, WorkflowExecution)

    def launch_many(
        self,
        requests: Iterable[LaunchRequest] | AsyncIterable[LaunchRequest],
        *,
        concurrency: int = DEFAULT_LAUNCH_CONCURRENCY,
        journal: Journal | None = None,
    ) -> LaunchBatch:
        """Launch many executions; iterate the result for one `LaunchOutcome` per request.

        At most `concurrency` launches are in flight, fewer for a while after a 429. A
        request that fails validation or meets an error becomes an outcome with `.error`;
        the others go on. The input is read lazily, as launch slots free up.

        With a `journal`, every request needs a `key` (unique in the journal): each key
        is claimed before its request is sent and its execution recorded after the
        answer, so running the batch again launches nothing twice. A key already
        launched comes back with `outcome.resumed` and its execution; one that may have
        been sent without a recorded answer comes back with a `LaunchInDoubtError`.

        >>> async for outcome in tl.workflows.launch_many(requests, concurrency=20):
        ...     print(outcome.index, outcome.execution or outcome.error)
        """
        from .._batches.launch import LaunchBatch

        if journal is None:
            return LaunchBatch(
                requests,
                concurrency=concurrency,
                build_body=initialise_body,
                launch=self._initialise,
                lifecycle=self._client.lifecycle,
                current_rate=self._launch_rate,
            )
        # Only a journaled batch needs the journal's code (and sqlite3): loaded here.
        from .._batches.journaled import JournaledLaunch

        journaled = JournaledLaunch(
            requests, journal=journal, launch=self._initialise, fetch=self.get
        )
        return LaunchBatch(
            journaled.items(),
            concurrency=concurrency,
            build_body=initialise_body,
            launch=self._initialise,
            attempt=journaled.attempt,
            lifecycle=self._client.lifecycle,
            current_rate=self._launch_rate,
        )

    def _launch_rate(self) -> float | None:
        return self._client.current_rate("POST", "/workflows")

    async def get(self, execution_id: str) -> WorkflowExecution:
        """The execution as it is now (`GET /workflows/{id}`)."""
        path = f"/workflows/{check_id('execution_id', execution_id)}"
        return await self._send_model(ApiRequest(method="GET", path=path), WorkflowExecution)

    async def cancel(self, execution_id: str) -> None:
        """Cancel a running execution (`POST /workflows/{id}/cancel`); harmless to repeat."""
        path = f"/workflows/{check_id('execution_id', execution_id)}/cancel"
        await self._send(ApiRequest(method="POST", path=path, mode=RetryMode.IDEMPOTENT))

    async def wait_for_completion(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
    ) -> WorkflowExecution:
        """Poll until the execution is final and return it (FAILED, EXPIRED... included).

        `timeout` (seconds) covers the whole wait, retries of failed checks included, and
        raises `WaitTimeoutError` (with `.last`) when it runs out. A webhook handled by
        `tl.webhooks.handle` ends the sleep between checks early.
        """
        check_id("execution_id", execution_id)
        return await traced(
            self._client.observation,
            "wait",
            execution_id,
            self._waits.wait(execution_id, timeout=timeout, poll=poll),
            _wait_notes,
        )

    def wait_many(
        self,
        execution_ids: Iterable[str],
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        concurrency: int | None = None,
    ) -> WaitBatch:
        """Wait for many executions; iterate the result for each one as it finishes.

        Each id gets its own `wait_for_completion(id, timeout=..., poll=...)`, at most
        `concurrency` of them at a time (None: all at once; a wait costs one small GET per
        poll interval). The first failing wait (e.g. `WaitTimeoutError`, `NotFoundError`)
        cancels the others and is raised from the loop.

        >>> async for execution in tl.workflows.wait_many(ids, timeout=600):
        ...     print(execution.id, execution.status)
        """
        from .._batches.wait import WaitBatch, check_poll_policy, check_timeout

        budget = check_timeout(timeout)
        policy = check_poll_policy(poll)
        limit = check_concurrency(concurrency, allow_none=True)

        async def wait(execution_id: str) -> WorkflowExecution:
            check_id("execution_id", execution_id)
            return await traced(
                self._client.observation,
                "wait",
                execution_id,
                self._waits.wait(execution_id, timeout=budget, poll=policy),
                _wait_notes,
            )

        return WaitBatch(execution_ids, wait, concurrency=limit)

    async def get_result(
        self, execution_id: str, *, max_bytes: int = DEFAULT_MAX_RESULT_BYTES
    ) -> Any:
        """The execution's result as parsed JSON (`GET /workflows/{id}/result`).

        A result stored behind a pre-signed link is fetched from there. A result above
        `max_bytes` raises ResultTooLargeError before its memory is spent (refused on its
        announced size when known, else once the count passes the limit); use
        `stream_result` or `download_result` for those.
        """
        check_id("execution_id", execution_id)
        results = await self._results_off_loop()
        return await traced(
            self._client.observation,
            "get_result",
            execution_id,
            results.get(execution_id, max_bytes=max_bytes),
        )

    def stream_result(
        self,
        execution_id: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        verify_md5: bool = True,
    ) -> contextlib.AbstractAsyncContextManager[ResultStream]:
        """The result as a stream of byte chunks (at most `chunk_size` each); use `async with`.

        >>> async with tl.workflows.stream_result(execution_id) as stream:
        ...     async for record in stream.json_items("records.item"):
        ...         ...

        A broken transfer resumes where it stopped (at most `max_attempts` requests to the
        storage); leaving the block releases the connection, also mid-way. The size is
        checked at the end, and the MD5 when the ETag is one (unless `verify_md5=False`).
        """
        return self._results.stream(
            execution_id, chunk_size=chunk_size, max_attempts=max_attempts, verify_md5=verify_md5
        )

    async def download_result(
        self,
        execution_id: str,
        destination: str | os.PathLike[str],
        *,
        on_progress: ProgressCallback | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        chunk_size: int = DEFAULT_WRITE_SIZE,
        verify_md5: bool = True,
    ) -> DownloadedResult:
        """Write the result to `destination` atomically, resuming and verifying as needed.

        The bytes are saved exactly as stored. A temporary file beside `destination` is
        written, fsynced and renamed over it; on any failure or cancellation it is removed
        and `destination` is left as it was. A cancellation first waits for the disk
        operation under way (a thread cannot be stopped); one that arrives during the
        final rename leaves the complete, verified file in place, though the cancel is
        raised. The file is readable by its owner only (mode 0600: results hold personal
        data); change its mode if others need it.

        `on_progress(done_bytes, total_or_None)` (a function or a coroutine function) is
        called as data reaches the disk; it goes back to 0 when the download has to start
        over. Gives up with ResultDownloadError after `max_attempts` requests to the
        storage. `chunk_size` is how many bytes are handed to the disk at once (from
        worker threads, so file I/O never blocks the loop).
        The size is always checked; the MD5 when the ETag is a plain MD5, unless
        `verify_md5=False` (MD5 runs below a gigabyte per second: on a very fast link it
        limits the rate; TLS already guards the bytes in transit).
        """
        check_id("execution_id", execution_id)
        results = await self._results_off_loop()
        return await traced(
            self._client.observation,
            "download",
            execution_id,
            results.download(
                execution_id,
                destination,
                on_progress=on_progress,
                max_attempts=max_attempts,
                write_size=chunk_size,
                verify_md5=verify_md5,
            ),
            _download_notes,
        )


def _wait_notes(execution: WorkflowExecution) -> list[tuple[str, str | int | float | bool]]:
    return [("execution.status", str(execution.status))]


def _download_notes(done: DownloadedResult) -> list[tuple[str, str | int | float | bool]]:
    return [
        ("download.size", done.size),
        ("download.attempts", done.attempts),
        ("download.resumes", done.resumes),
        ("download.redirected", done.redirected),
    ]
