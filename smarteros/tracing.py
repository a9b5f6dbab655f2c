"""OpenTelemetry spans, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Each operation call becomes a span whose trace id is the call's own trace id (the one in its
telemetry row, its log lines and its X-Trace-Id header), so a trace found in ClickHouse opens in
the tracing backend and the other way round.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Iterator
from typing import Any

from django.conf import settings


@functools.cache
def tracer_provider() -> Any:
    """The process's tracer provider, or None when no OTLP endpoint is configured."""
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "smarteros"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))
    )
    return provider


@contextlib.contextmanager
def operation_span(name: str, *, trace_id: str, attributes: dict[str, Any]) -> Iterator[Any]:
    """A span for one operation call, in trace `trace_id` (32 hex digits); a no-op when tracing
    is off."""
    provider = tracer_provider()
    if provider is None:
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(secrets.token_hex(8), 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    with provider.get_tracer("smarteros.executor").start_as_current_span(
        name, context=context, attributes=attributes
    ) as span:
        yield span
