"""The tenants list: search, filters, sort, pagination, and each tenant's last 24 hours."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from smarteros.parsing import parse_page, parse_text
from tenants.console.access import is_platform_admin
from tenants.console.queries import (
    SORTS,
    call_stats,
    calls_freshness,
    counts_freshness,
    tenants_page,
)
from tenants.models import Tenant


@login_required
def tenant_list(request: HttpRequest) -> HttpResponse:
    params = {
        "q": parse_text(request.GET.get("q"), field="q", max_length=100).strip(),
        "status": request.GET.get("status", "")
        if request.GET.get("status") in Tenant.Status.values
        else "",
        "plan": request.GET.get("plan", "")
        if request.GET.get("plan") in Tenant.Plan.values
        else "",
        "sort": request.GET.get("sort", "slug") if request.GET.get("sort") in SORTS else "slug",
    }
    page = tenants_page(
        user=request.user,
        search=params["q"],
        status=params["status"],
        plan=params["plan"],
        sort=params["sort"],
        page=parse_page(request.GET.get("page")),
    )
    stats = call_stats(slugs=[t.slug for t in page.object_list])
    rows = [
        {"tenant": t, "stats": None if stats is None else stats.get(t.slug)}
        for t in page.object_list
    ]
    last_calls = [s.last_call for s in (stats or {}).values() if s.last_call is not None]
    context = {
        "page": page,
        "rows": rows,
        "params": params,
        "query": urlencode({k: v for k, v in params.items() if v}),
        "telemetry_available": stats is not None,
        "calls_counted": calls_freshness(last_call=max(last_calls, default=None)),
        "counted": counts_freshness(),
        "statuses": Tenant.Status.values,
        "plans": Tenant.Plan.values,
        "sorts": [
            ("slug", "Slug"),
            ("-slug", "Slug (Z-A)"),
            ("name", "Name"),
            ("-created", "Newest"),
            ("created", "Oldest"),
            ("status", "Status"),
            ("plan", "Plan"),
        ],
        "can_create": is_platform_admin(request.user),
    }
    # htmx asks for the table only when a filter changes.
    template = (
        "console/_tenant_table.html"
        if request.headers.get("HX-Request")
        else "console/tenant_list.html"
    )
    return render(request, template, context)
