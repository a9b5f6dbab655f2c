from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smarteros.infra.health import check_all


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about dependencies."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 naming the ones that are down."""
    results = check_all()
    down = [r.name for r in results if not r.ok]
    body = {
        "status": "ready" if not down else "unavailable",
        "down": down,
        "dependencies": {r.name: r.as_dict() for r in results},
    }
    return JsonResponse(body, status=503 if down else 200)
