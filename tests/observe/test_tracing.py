"""OpenTelemetry spans for calls, retries, renewals, waits and downloads, in the caller's trace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_server import serving
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from transactionlink_async import (
    ApiKey,
    NotFoundError,
    OrganizationToken,
    PollPolicy,
    RetryPolicy,
    TransactionLink,
    WorkflowStatus,
)
from transactionlink_async.testing import FakeTransactionLink

pytestmark = pytest.mark.anyio


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def client(
    fake: FakeTransactionLink, provider: TracerProvider, **options: object
) -> TransactionLink:
    return TransactionLink(
        OrganizationToken(fake.org_token),
        base_url=fake.base_url,
        tracing=provider,
        retry=RetryPolicy(backoff_base=0.01),
        **options,  # type: ignore[arg-type]
    )


def everything_said(spans: tuple[ReadableSpan, ...]) -> str:
    """Every name, attribute and event of the spans, as one text to search for secrets."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.append(repr(dict(span.attributes or {})))
        parts.append(repr(span.status.description))
        for event in span.events:
            parts.append(event.name + repr(dict(event.attributes or {})))
    return "\n".join(parts)


async def test_one_client_span_per_call_with_http_attributes_and_retries(
    fake: FakeTransactionLink, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    execution_id = fake.create_execution()
    fake.inject("GET", "/workflows/*", status=503, times=2)
    async with client(fake, provider) as tl:
        await tl.workflows.get(execution_id)
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /workflows/{id}"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.full"] == f"{fake.base_url}/workflows/{execution_id}"
    assert attributes["url.template"] == "/workflows/{id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["http.request.resend_count"] == 2
    assert attributes["transactionlink.execution.id"] == execution_id
    assert attributes["server.address"] == "127.0.0.1"
    assert [e.name for e in span.events] == ["retry", "retry"]
    assert span.status.status_code is StatusCode.UNSET


async def test_an_error_answer_marks_the_span(
    fake: FakeTransactionLink, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client(fake, provider) as tl:
        with pytest.raises(NotFoundError):
            await tl.workflows.get("missing")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "404"
    assert dict(span.attributes or {})["http.response.status_code"] == 404


async def test_token_calls_are_child_spans_and_a_renewal_is_an_event(
    fake: FakeTransactionLink, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    execution_id = fake.create_execution()
    credentials = ApiKey(fake.api_key, fake.api_secret)
    async with TransactionLink(credentials, base_url=fake.base_url, tracing=provider) as tl:
        await tl.workflows.get(execution_id)
        fake.expire_access_tokens()
        await tl.workflows.get(execution_id)
    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}
    authorize = by_name["POST /auth/authorize"]
    first, second = [s for s in spans if s.name == "GET /workflows/{id}"]
    assert authorize.parent is not None
    assert authorize.parent.span_id == first.context.span_id
    assert "token renewed" in [e.name for e in second.events]
    renewal = [s for s in spans if s.name.startswith("POST /auth/") and s is not authorize]
    assert renewal
    assert all(s.parent and s.parent.span_id == second.context.span_id for s in renewal)
    text = everything_said(spans)
    assert fake.api_secret not in text
    assert fake.api_key not in text
    assert "Bearer" not in text


async def test_a_wait_is_one_span_holding_its_polls(
    fake: FakeTransactionLink, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake.define_workflow("kyc", statuses=("RUNNING", "COMPLETED"), polls_per_status=1)
    async with client(fake, provider) as tl:
        started = await tl.workflows.initialise(workflow_definition_id="kyc", locale="en")
        done = await tl.workflows.wait_for_completion(started.id, timeout=30, poll=_fast_polls())
    assert done.status is WorkflowStatus.COMPLETED
    spans = exporter.get_finished_spans()
    (wait,) = [s for s in spans if s.name == "transactionlink wait"]
    attributes = dict(wait.attributes or {})
    assert attributes["transactionlink.execution.id"] == started.id
    assert attributes["transactionlink.execution.status"] == "COMPLETED"
    polls = [s for s in spans if s.name == "GET /workflows/{id}"]
    assert polls
    assert all(p.parent and p.parent.span_id == wait.context.span_id for p in polls)


async def test_a_download_is_one_span_and_the_signature_stays_out(
    fake: FakeTransactionLink,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    tmp_path: Path,
) -> None:
    execution_id = fake.create_execution()
    fake.set_large_result(execution_id, size=100_000)
    async with client(fake, provider) as tl:
        await tl.workflows.download_result(execution_id, tmp_path / "r.json")
    spans = exporter.get_finished_spans()
    (download,) = [s for s in spans if s.name == "transactionlink download"]
    attributes = dict(download.attributes or {})
    assert attributes["transactionlink.download.size"] == 100_000
    assert attributes["transactionlink.download.redirected"] is True
    storage = [
        s for s in spans if dict(s.attributes or {}).get("transactionlink.target") == "storage"
    ]
    assert len(storage) == 1
    assert storage[0].parent
    assert storage[0].parent.span_id == download.context.span_id
    url = str(dict(storage[0].attributes or {})["url.full"])
    assert url.startswith(fake.s3.base_url)
    assert "?" not in url
    text = everything_said(spans)
    assert "X-Amz-Signature" not in text
    assert "X-Amz-Credential" not in text
    assert fake.org_token not in text


async def test_the_sdk_spans_join_the_callers_trace(
    fake: FakeTransactionLink, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    execution_id = fake.create_execution()
    tl = client(fake, provider)
    app = FastAPI()

    @app.get("/status/{execution_id}")
    async def status(execution_id: str) -> dict[str, str]:
        execution = await tl.workflows.get(execution_id)
        return {"status": str(execution.status)}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    async with tl, serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.get(f"/status/{execution_id}")
        assert answer.json() == {"status": "COMPLETED"}
    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    (call,) = [s for s in spans if s.name == "GET /workflows/{id}"]
    assert call.context.trace_id == server.context.trace_id
    assert call.parent is not None
    assert call.parent.span_id == server.context.span_id


def test_tracing_must_be_a_bool_or_a_tracer_provider() -> None:
    with pytest.raises(TypeError, match="tracing must be True, False or an opentelemetry"):
        TransactionLink(OrganizationToken("tot_x"), tracing="yes")  # type: ignore[arg-type]


def test_opentelemetry_is_imported_only_when_tracing_is_asked_for() -> None:
    code = (
        "import sys, transactionlink_async as t\n"
        "tl = t.TransactionLink(t.OrganizationToken('tot_x'))\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
        "t.TransactionLink(t.OrganizationToken('tot_x'), tracing=True)\n"
        "assert 'opentelemetry.trace' in sys.modules\n"
    )
    subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2]
    )


def _fast_polls() -> PollPolicy:
    return PollPolicy(initial=0.01, multiplier=1.0, maximum=0.01, jitter=0.0)


async def test_hooks_and_tracing_together(
    fake: FakeTransactionLink, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    execution_id = fake.create_execution()
    statuses: list[int | None] = []
    fake.inject("GET", "/workflows/*", status=503, times=1)
    async with client(fake, provider) as tl:
        tl.events.on_response(lambda event: statuses.append(event.status))
        await tl.workflows.get(execution_id)
        fake.set_large_result(execution_id, size=10_000)
        await tl.workflows.get_result(execution_id)
    assert statuses == [503, 200, 200, 200]  # the retried GET, /result, the storage
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("GET /workflows/{id}") == 1
    assert "transactionlink get_result" in names
