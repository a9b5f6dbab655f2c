from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smarteros.infra.health import check_all, supervised_processes, worker_heartbeats


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about dependencies."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 naming the ones that are down. Workers with
    a stale heartbeat and processes in a crash loop make it "degraded" (still 200), by name."""
    results = check_all()
    down = [r.name for r in results if not r.ok]
    workers: dict[str, dict[str, object]] = {}
    processes: dict[str, dict[str, object]] = {}
    degraded = []
    if "redis" not in down:  # both live in Redis; a Redis outage is reported above
        workers, stale = worker_heartbeats()
        processes, looping = supervised_processes()
        degraded = [f"{d.name}: {d.reason}" for d in [*looping, *stale]]
    status = "unavailable" if down else "degraded" if degraded else "ready"
    body = {
        "status": status,
        "down": down,
        "degraded": degraded,
        "dependencies": {r.name: r.as_dict() for r in results},
        "workers": workers,
        "processes": processes,
    }
    return JsonResponse(body, status=503 if down else 200)
