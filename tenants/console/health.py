"""Platform health page (platform admins): the same readiness report `/readyz` gives, laid out for
a person — services, processes with restarts and last exit, workers' heartbeats, consumer groups'
lag and last progress, the outbox backlog — and dead letters by tenant over 24 hours."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from smarteros.infra.readiness import readiness_report
from tenants.console.access import require_platform
from tenants.console.queries import call_stats
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped

DEAD_LETTER_ROWS = 20


@never_cache
@login_required
@require_GET
def platform_health(request: HttpRequest) -> HttpResponse:
    require_platform(request, action="platform.health")
    report = readiness_report()
    with dangerously_unscoped():
        slugs = list(Tenant.objects.order_by("slug").values_list("slug", flat=True))
    stats = call_stats(slugs=slugs)
    dead_letters = (
        None
        if stats is None
        else sorted(
            ((slug, s.dead_letters) for slug, s in stats.items() if s.dead_letters),
            key=lambda row: (-row[1], row[0]),
        )[:DEAD_LETTER_ROWS]
    )
    return render(
        request,
        "console/health.html",
        {"report": report, "details": report.details(), "dead_letters": dead_letters},
    )
