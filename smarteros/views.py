from __future__ import annotations

import ipaddress

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smarteros.infra.readiness import readiness_report


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about dependencies."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503. "degraded" (still 200), by name, when the
    outbox's backlog is past its thresholds, a worker's heartbeat is stale, a process is in a
    crash loop or a consumer group stalls. Staff and loopback callers also get the details
    (which dependencies are down, versions, latencies, outbox figures, workers, processes,
    each consumer group's lag and last progress); anyone else only the status."""
    report = readiness_report()
    body: dict[str, object] = {"status": report.status}
    if readiness_details_allowed(request):
        body.update(report.details())
    return JsonResponse(body, status=503 if report.down else 200)


def readiness_details_allowed(request: HttpRequest) -> bool:
    """Versions and latencies help an attacker pick an exploit: staff or loopback only."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    try:
        return ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", ""))).is_loopback
    except ValueError:
        return False
