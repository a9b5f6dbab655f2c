"""Audit trail: filter by actor, action, subject, tenant and time; each entry links to its subject."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from smarteros.parsing import InvalidValue, parse_iso_time, parse_page, parse_text
from tenants.console.access import is_platform_admin
from tenants.models import AuditEvent, Membership, Tenant
from tenants.scope import dangerously_unscoped


def _when(value: str) -> datetime | None:
    try:
        return parse_iso_time(value, field="time", require_zone=False) if value else None
    except InvalidValue:
        return None


@login_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    get = request.GET
    params = {
        k: parse_text(get.get(k), field=k, max_length=200).strip()
        for k in ("actor", "action", "subject", "tenant", "since", "until")
    }
    errors = {
        k: "use YYYY-MM-DDTHH:MM"
        for k in ("since", "until")
        if params[k] and _when(params[k]) is None
    }
    events = AuditEvent.objects.select_related("tenant").order_by("-created_at", "-pk")
    if not is_platform_admin(request.user):
        events = events.filter(
            tenant_id__in=Membership.objects.filter(user_id=int(request.user.pk or 0)).values(
                "tenant_id"
            )
        )
    if params["actor"]:
        events = events.filter(actor__icontains=params["actor"])
    if params["action"]:
        events = events.filter(action__startswith=params["action"])
    if params["subject"]:
        events = events.filter(target__icontains=params["subject"])
    if params["tenant"]:
        events = events.filter(tenant__slug=params["tenant"])
    if not errors:
        if since := _when(params["since"]):
            events = events.filter(created_at__gte=since)
        if until := _when(params["until"]):
            events = events.filter(created_at__lte=until)
    page_number = parse_page(get.get("page"))
    with dangerously_unscoped():
        page = Paginator(events, 50).get_page(page_number)
        page.object_list = list(page.object_list)
    return render(
        request,
        "console/audit.html",
        {
            "page": page,
            "params": params,
            "errors": errors,
            "query": urlencode({k: v for k, v in params.items() if v}),
            "statuses": Tenant.Status.values,
        },
        status=400 if errors else 200,
    )
