"""With an OTLP endpoint set, each operation call is exported as a span in its own trace id."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


class Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            Collector.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_operation_calls_become_spans_with_the_telemetry_trace_id(
    settings: Any, make_tenant: Any
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.context import OperationContext
    from mcp_tools.executor import execute
    from smarteros.tracing import tracer_provider

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = f"http://127.0.0.1:{server.server_address[1]}"
    tracer_provider.cache_clear()
    try:
        principal = principal_from_api_key(make_tenant("traced").key)
        ctx = OperationContext(
            principal=principal, surface="rest", trace_id="0af7651916cd43dd8448eb211c80319c"
        )
        assert execute("tenant_get_tenant", {}, principal=principal, surface="rest", context=ctx).ok
        tracer_provider().force_flush()
    finally:
        tracer_provider.cache_clear()
        server.shutdown()
    spans = []
    for body in Collector.received:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans += [
            span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
        ]
    assert [s.name for s in spans] == ["tenant_get_tenant"]
    assert spans[0].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    attributes = {a.key: a.value.string_value for a in spans[0].attributes}
    assert attributes["smarteros.tenant"] == "traced" and attributes["smarteros.status"] == "ok"
