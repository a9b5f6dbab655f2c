from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from smarteros.context import current_trace_id, new_trace_id

log = logging.getLogger(__name__)


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


# Machine clients (REST integrations, providers' webhooks) get JSON errors there, never an HTML
# page: Django's debug pages would show settings, code and request data to whoever sent it.
JSON_ERROR_PREFIXES = ("/api/", "/hooks/")


class JsonErrorMiddleware:
    """Under JSON_ERROR_PREFIXES: an unhandled exception is logged and answered with a JSON 500
    that says nothing about it but the trace id; an HTML error page (404, 400, 413 from Django
    itself) or a non-JSON 500 is replaced by a JSON body with the same status. Put it first in MIDDLEWARE,
    so it also sees what other middleware turned into error pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(JSON_ERROR_PREFIXES) and response.status_code >= 400:
            content_type = response.get("Content-Type", "")
            # Django's pages are HTML; django-ninja's debug traceback is a plain-text 500.
            if content_type.startswith("text/html") or (
                response.status_code >= 500 and not content_type.startswith("application/json")
            ):
                error = _json_error(response.status_code, response.get("X-Trace-Id", ""))
                # A 405 must keep saying which methods are allowed (RFC 9110).
                if response.has_header("Allow"):
                    error["Allow"] = response["Allow"]
                return error
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(JSON_ERROR_PREFIXES):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _json_error(413, current_trace_id.get() or "")
        if isinstance(exception, Http404):  # a view's "no such thing", not a failure
            return _json_error(404, current_trace_id.get() or "")
        if isinstance(exception, SuspiciousOperation | BadRequest):
            log.warning("bad request to %s: %s", request.path, exception)
            return _json_error(400, current_trace_id.get() or "")
        log.exception("unhandled error in %s", request.path)
        return _json_error(500, current_trace_id.get() or "")


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _json_error(status: int, trace_id: str) -> JsonResponse:
    code = _CODES.get(status, "internal_error" if status >= 500 else "error")
    message = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {"code": code, "message": message, "trace_id": trace_id}
    response = JsonResponse(body, status=status)
    if trace_id:
        response["X-Trace-Id"] = trace_id
    return response
