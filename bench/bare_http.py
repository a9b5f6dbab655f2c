"""Baselines for bench/http_latency.py, served the same way as SmarterOS itself.

`bench.bare_http:application` is SmarterOS's own ASGI app with two extra routes: a bare
django-ninja endpoint that reads one tenant row and nothing else (no auth, no executor, no
telemetry), so the REST comparison shares the server, Django and the database with ours; and
`bare/hook/`, a plain Django view that reads the request body and answers 200 (the baseline of
bench/webhooks.py: the same server, middleware and body reading as /hooks/, no checks).
`python bench/bare_http.py mcp PORT [json]` serves a bare `mcp` SDK server with an echo tool over
stateless streamable HTTP under uvicorn (answering with an event stream, or with `json`, plain
JSON responses).
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")


def _ninja_urls() -> Any:
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt
    from ninja import NinjaAPI

    from smarteros.urls import urlpatterns
    from tenants.models import Tenant
    from tenants.scope import tenant_read_scope

    api = NinjaAPI(urls_namespace="bare-bench", docs_url=None)

    @api.get("/tenant/{tenant_id}")
    def tenant(request: Any, tenant_id: int) -> dict[str, Any]:
        with tenant_read_scope(tenant_id):
            row = Tenant.objects.values("slug", "name", "status", "plan").get(pk=tenant_id)
        return dict(row)

    @csrf_exempt
    def hook(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"accepted": True, "bytes": len(request.body)})

    class Urls:
        pass

    module = Urls()
    module.urlpatterns = [path("bare/hook/", hook), path("bare/", api.urls), *urlpatterns]  # type: ignore[attr-defined]
    return module


def _django_application() -> Any:
    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = _ninja_urls()
    from smarteros.asgi import application as smarteros_application

    return smarteros_application


def _serve_bare_mcp(port: int, json_response: bool) -> None:
    import mcp_types as types
    import uvicorn
    from mcp.server import Server

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[types.Tool(name="echo", description="Echo.", input_schema={"type": "object"})]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = str((params.arguments or {}).get("text", ""))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content={"text": text}
        )

    server = Server("bare", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)
    app = server.streamable_http_app(stateless_http=True, json_response=json_response)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    _serve_bare_mcp(int(sys.argv[2]), json_response=sys.argv[3:] == ["json"])
else:
    application = _django_application()
