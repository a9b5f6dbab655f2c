from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from telemetry.charts import chart_data
from telemetry.queries import RANGES, TelemetryUnavailable, trace_calls
from tenants.selectors import tenants_visible_to

TRACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@login_required
def telemetry_page(request: HttpRequest) -> HttpResponse:
    tenants = [tenant.slug for tenant in tenants_visible_to(user=request.user)]
    # Links from the console open the charts already filtered (?tenant=…&range=…).
    selected = {
        "tenant": request.GET.get("tenant") if request.GET.get("tenant") in tenants else "",
        "range": request.GET.get("range") if request.GET.get("range") in RANGES else "1h",
    }
    return render(
        request,
        "telemetry/charts.html",
        {"tenants": tenants, "ranges": list(RANGES), "selected": selected},
    )


@login_required
def telemetry_data(request: HttpRequest) -> JsonResponse:
    """Chart data as JSON; the page fetches it on load, on every change and every 15 s."""
    visible = [tenant.slug for tenant in tenants_visible_to(user=request.user)]
    range_key = request.GET.get("range", "1h")
    if range_key not in RANGES:
        return JsonResponse({"error": f"range must be one of {', '.join(RANGES)}"}, status=400)
    wanted = request.GET.get("tenant") or ""
    if wanted and wanted not in visible:
        return JsonResponse(
            {"error": f"no tenant {wanted!r} among the ones you may see"}, status=404
        )
    tenants = [wanted] if wanted else visible
    if not tenants:
        return JsonResponse({"empty": True, "message": "You are not a member of any tenant yet."})
    try:
        return JsonResponse(chart_data(tenants=tenants, range_key=range_key))
    except TelemetryUnavailable:
        return JsonResponse(
            {"unavailable": True, "message": "telemetry store unavailable"}, status=503
        )


@login_required
def telemetry_trace(request: HttpRequest) -> HttpResponse:
    """One trace's calls among the operator's tenants (where the topic viewer's links lead)."""
    trace = request.GET.get("id", "")
    context: dict[str, Any] = {"trace": trace}
    if not TRACE_RE.match(trace):
        context["trace_error"] = "id: letters, digits and - _ . : only, 1 to 128 of them"
        return render(request, "telemetry/trace.html", context, status=400)
    tenants = [tenant.slug for tenant in tenants_visible_to(user=request.user)]
    try:
        context["calls"] = trace_calls(tenants=tenants, trace_id=trace) if tenants else []
    except TelemetryUnavailable:
        context["trace_error"] = "telemetry store unavailable"
        return render(request, "telemetry/trace.html", context, status=503)
    return render(request, "telemetry/trace.html", context)
