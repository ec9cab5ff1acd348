"""OpenTelemetry spans for calls, waits and downloads; imported only when tracing is asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

try:
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised by the import-guard test
    raise ImportError(
        "tracing needs opentelemetry-api; install the extra: "
        "pip install 'transactionlink-async[otel]'"
    ) from exc

import yarl

from .._version import __version__
from .trace import CallTrace, OperationTrace
from .urls import execution_id_of, route_of, url_without_query

__all__ = ["EXECUTION_ID", "OpenTelemetryObserver"]

#: The attribute naming the execution a span is about.
EXECUTION_ID = "transactionlink.execution.id"


class OpenTelemetryObserver:
    """Spans in the caller's trace: one per call (retries as events), wait and download.

    Attributes follow the HTTP semantic conventions; URLs are shown without their query,
    so a pre-signed link's signature never becomes an attribute, and no header is
    recorded (tokens travel in headers).
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self._tracer = trace.get_tracer(
            "transactionlink_async", __version__, tracer_provider=tracer_provider
        )

    def call(self, method: str, url: yarl.URL, *, target: str) -> CallTrace:
        return _CallSpan(self._tracer, method, url, target)

    def operation(self, name: str, execution_id: str) -> OperationTrace | None:
        return _OperationSpan(self._tracer, name, execution_id)


class _Current:
    """A span made current until it ends, so that calls inside it become its children."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token = context.attach(trace.set_span_in_context(span))

    def close(self, error: BaseException | None, error_type: str | None = None) -> None:
        span = self._span
        if error is not None:
            if isinstance(error, asyncio.CancelledError):
                span.add_event("cancelled")
            else:
                span.set_attribute("error.type", error_type or type(error).__qualname__)
                # The SDK's messages hold no secrets (tokens, signatures) by design.
                span.set_status(Status(StatusCode.ERROR, str(error)[:500]))
        context.detach(self._token)
        span.end()


class _CallSpan(_Current):
    __slots__ = ("_attempt", "_status")

    def __init__(self, tracer: trace.Tracer, method: str, url: yarl.URL, target: str) -> None:
        path = url.path
        route = route_of(path) if target == "api" else None
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.full": url_without_query(url),
            "server.address": url.host or "",
            "transactionlink.target": target,
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        if route is not None:
            attributes["url.template"] = route
        execution_id = execution_id_of(path) if target == "api" else None
        if execution_id is not None:
            attributes[EXECUTION_ID] = execution_id
        name = f"{method} {route}" if route else method
        super().__init__(tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes))
        self._attempt = 0
        self._status: int | None = None

    def attempt(self, number: int) -> None:
        self._attempt = number
        if number > 1:
            self._span.set_attribute("http.request.resend_count", number - 1)

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        self._span.set_attribute("http.response.status_code", status)
        self._status = status

    def failed(self, detail: str) -> None:
        self._span.add_event("no answer", {"detail": detail, "attempt": self._attempt})

    def retrying(self, delay: float) -> None:
        self._span.add_event("retry", {"attempt": self._attempt, "delay_s": delay})

    def renewed(self) -> None:
        self._span.add_event("token renewed")

    def end(self, error: BaseException | None) -> None:
        # An error answer is named by its status, as the HTTP conventions ask.
        status = self._status
        self.close(error, str(status) if status is not None and status >= 400 else None)


class _OperationSpan(_Current):
    __slots__ = ()

    def __init__(self, tracer: trace.Tracer, name: str, execution_id: str) -> None:
        super().__init__(
            tracer.start_span(f"transactionlink {name}", attributes={EXECUTION_ID: execution_id})
        )

    def note(self, name: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(f"transactionlink.{name}", value)

    def end(self, error: BaseException | None) -> None:
        self.close(error)
