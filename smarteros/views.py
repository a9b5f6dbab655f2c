from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smarteros.infra.health import check_all, outbox_check


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about dependencies."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 naming the ones that are down; "degraded"
    (still 200) when the outbox's backlog is past its thresholds."""
    results = check_all()
    down = [r.name for r in results if not r.ok]
    outbox = outbox_check()
    status = "unavailable" if down else "degraded" if outbox["status"] == "degraded" else "ready"
    body = {
        "status": status,
        "down": down,
        "dependencies": {r.name: r.as_dict() for r in results},
        "outbox": outbox,
    }
    return JsonResponse(body, status=503 if down else 200)
