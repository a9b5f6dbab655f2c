from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from smarteros.context import current_trace_id, new_trace_id


class RequestContextMiddleware:
    """Gives every request a trace id (from `traceparent` when a caller sends one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trace_id = _trace_id_from(request.headers.get("traceparent", "")) or new_trace_id()
        token = current_trace_id.set(trace_id)
        try:
            response = self.get_response(request)
        finally:
            current_trace_id.reset(token)
        response["X-Trace-Id"] = trace_id
        return response


def _trace_id_from(traceparent: str) -> str | None:
    parts = traceparent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32:
        return parts[1].lower()
    return None
