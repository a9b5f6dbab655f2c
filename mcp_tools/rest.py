"""REST API at /api/v1/<service>/<operation>, generated from the registry (django-ninja).

The body is handed to the executor as it came, so validation, permissions, rate limits,
telemetry and errors are exactly those of MCP; django-ninja supplies routing and OpenAPI.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer
from pydantic import BaseModel, Field

from mcp_tools.auth import principal_from_api_key
from mcp_tools.context import Principal
from mcp_tools.errors import AuthenticationFailed, InvalidInput, RateLimited
from mcp_tools.executor import CallResult, execute
from mcp_tools.registry import Operation, get_registry

REF_TEMPLATE = "#/components/schemas/{model}"


class ErrorOut(BaseModel):
    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, naming the field and rule where relevant.")
    details: list[dict[str, Any]] = Field(default_factory=list, description="Per-field problems.")


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        try:
            return principal_from_api_key(token)
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


def _view(op: Operation) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        principal: Principal = request.auth  # type: ignore[attr-defined]
        try:
            arguments = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            result = CallResult(op.name, error=InvalidInput("body: not valid JSON"))
            return _error_response(result)
        result = execute(op.name, arguments, principal=principal, surface="rest")
        if not result.ok:
            return _error_response(result)
        return JsonResponse(result.output)

    view.__name__ = op.name
    return view


def _request_body(op: Operation) -> dict[str, Any]:
    schema = op.input_model.model_json_schema(ref_template=REF_TEMPLATE)
    schema.pop("$defs", None)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


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

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        error = AuthenticationFailed("invalid API key: send Authorization: Bearer <tenant API key>")
        response = JsonResponse(error.as_dict(), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="smarteros"'
        return response

    errors = {code: ErrorOut for code in (401, 403, 404, 409, 422, 429, 502, 503)}
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
