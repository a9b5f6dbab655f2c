from __future__ import annotations

import ipaddress

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from smarteros.infra.health import (
    check_all,
    consumer_groups,
    outbox_check,
    supervised_processes,
    worker_heartbeats,
)


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
    results = check_all()
    down = [r.name for r in results if not r.ok]
    outbox = outbox_check()
    workers: dict[str, dict[str, object]] = {}
    processes: dict[str, dict[str, object]] = {}
    groups: dict[str, dict[str, object]] = {}
    degraded = [f"outbox: {outbox['detail']}"] if outbox["status"] == "degraded" else []
    if "redis" not in down:  # both live in Redis; a Redis outage is reported above
        workers, stale = worker_heartbeats()
        processes, looping = supervised_processes()
        groups, stalled = consumer_groups()
        degraded += [f"{d.name}: {d.reason}" for d in [*looping, *stale, *stalled]]
    status = "unavailable" if down else "degraded" if degraded else "ready"
    body: dict[str, object] = {"status": status}
    if readiness_details_allowed(request):
        body["down"] = down
        body["degraded"] = degraded
        body["dependencies"] = {r.name: r.as_dict() for r in results}
        body["outbox"] = outbox
        body["workers"] = workers
        body["processes"] = processes
        body["consumer_groups"] = groups
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

