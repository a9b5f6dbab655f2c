"""REST API at /api/v1/<service>/<operation>, generated from the registry (django-ninja).

The body is handed to the executor as it came, so validation, permissions, rate limits,
telemetry and errors are exactly those of MCP; django-ninja supplies routing and OpenAPI.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer
from pydantic import BaseModel, Field

from mcp_tools.auth import INVALID_KEY, principal_from_api_key
from mcp_tools.context import Principal
from mcp_tools.executor import CallResult, execute
from mcp_tools.registry import Operation, get_registry
from smarteros.client_address import request_client_address
from smarteros.errors import (
    AuthenticationFailed,
    InvalidInput,
    MalformedRequest,
    OperationError,
    PayloadTooLarge,
    RateLimited,
)
from smarteros.parsing import InvalidValue, parse_content_length

REF_TEMPLATE = "#/components/schemas/{model}"


class ErrorOut(BaseModel):
    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, naming the field and rule where relevant.")
    details: list[dict[str, Any]] = Field(default_factory=list, description="Per-field problems.")


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        try:
            return principal_from_api_key(token, client=request_client_address(request))
        except AuthenticationFailed:
            return None


class SmarterOSApi(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for op in get_registry().all():
            definitions = op.input_model.model_json_schema(ref_template=REF_TEMPLATE).get(
                "$defs", {}
            )
            components.update(definitions)
        return schema


def _error_response(result: CallResult) -> HttpResponse:
    assert result.error is not None
    response = JsonResponse(result.error.as_dict(), status=result.error.http_status)
    if isinstance(result.error, RateLimited):
        response["Retry-After"] = str(result.error.retry_after)
    return response


def _read_arguments(request: HttpRequest) -> tuple[Any, OperationError | None]:
    """The JSON body, or why it cannot be had; over API_MAX_BODY_BYTES it is not even read."""
    limit = settings.API_MAX_BODY_BYTES
    too_large = PayloadTooLarge(f"body: larger than the limit of {limit} bytes")
    try:
        if parse_content_length(request.META.get("CONTENT_LENGTH")) > limit:
            return None, too_large
    except InvalidValue:
        return None, MalformedRequest("body: invalid Content-Length")
    body = request.read(limit + 1)
    if len(body) > limit:
        return None, too_large
    try:
        arguments = json.loads(body or b"{}")
    except RecursionError:
        return None, MalformedRequest("body: JSON nested too deeply to parse")
    except (ValueError, UnicodeDecodeError):
        return None, MalformedRequest("body: not valid JSON")
    # The executor reads absent MCP arguments (None) as {}; a REST body of `null` is no object.
    if arguments is None:
        return None, InvalidInput("body: must be a JSON object, not null")
    return arguments, None


def _view(op: Operation) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        principal: Principal = request.auth  # type: ignore[attr-defined]
        arguments, refusal = _read_arguments(request)
        # A refused body goes through the executor too: rate-limited and recorded like any call.
        result = execute(op.name, arguments, principal=principal, surface="rest", refusal=refusal)
        if not result.ok:
            return _error_response(result)
        return HttpResponse(result.output_json, content_type="application/json")

    view.__name__ = op.name
    return view


def _request_body(op: Operation) -> dict[str, Any]:
    schema = op.input_model.model_json_schema(ref_template=REF_TEMPLATE)
    schema.pop("$defs", None)
    # No body reads as {}: an operation whose fields are all optional may be called without one.
    required = bool(schema.get("required")) or bool(schema.get("minProperties"))
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def build_api() -> NinjaAPI:
    api = SmarterOSApi(
        title="SmarterOS API",
        version="1",
        description="Every operation of SmarterOS, the same ones MCP clients call as tools. "
        "Authenticate with `Authorization: Bearer <tenant API key>`.",
        auth=ApiKeyAuth(),
        urls_namespace="api_v1",
        docs_url="/docs",
    )

    @api.exception_handler(RateLimited)
    def throttled(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        response = JsonResponse(exc.as_dict(), status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        error = AuthenticationFailed(f"{INVALID_KEY}: send Authorization: Bearer <tenant API key>")
        response = JsonResponse(error.as_dict(), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="smarteros"'
        return response

    errors = {code: ErrorOut for code in (400, 401, 403, 404, 409, 413, 422, 429, 502, 503)}
    for op in get_registry().all():
        api.post(
            f"/{op.service}/{op.action}",
            response={200: op.output_model, **errors},
            summary=op.title,
            description=op.description,
            operation_id=op.name,
            tags=[op.service],
            openapi_extra={"requestBody": _request_body(op)},
        )(_view(op))
    return api


api = build_api()
