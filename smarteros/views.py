from __future__ import annotations

import ipaddress

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smarteros.infra.health import check_all


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about dependencies."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503. Staff and loopback callers also get which
    ones are down and each one's version and latency; anyone else only the overall status."""
    results = check_all()
    down = [r.name for r in results if not r.ok]
    body: dict[str, object] = {"status": "ready" if not down else "unavailable"}
    if readiness_details_allowed(request):
        body["down"] = down
        body["dependencies"] = {r.name: r.as_dict() for r in results}
    return JsonResponse(body, status=503 if down else 200)


def readiness_details_allowed(request: HttpRequest) -> bool:
    """Versions and latencies help an attacker pick an exploit: staff or loopback only."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    try:
        return ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", ""))).is_loopback
    except ValueError:
        return False
