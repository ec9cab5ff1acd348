"""Choosing the tracer from `TransactionLink(tracing=...)`, importing OpenTelemetry only then."""

from __future__ import annotations

from .trace import Observer

__all__ = ["tracer_for"]


def tracer_for(tracing: object) -> Observer | None:
    """None for `tracing=False`; spans through the global (True) or a given TracerProvider."""
    if tracing is False:
        return None
    # Duck-typed, so that checking costs no import when tracing is off.
    if not isinstance(tracing, bool) and not callable(getattr(tracing, "get_tracer", None)):
        raise TypeError(
            "tracing must be True, False or an opentelemetry TracerProvider, "
            f"got {type(tracing).__name__}"
        )
    from .otel import OpenTelemetryObserver

    return OpenTelemetryObserver(None if tracing is True else tracing)
