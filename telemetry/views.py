from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from telemetry.charts import chart_data
from telemetry.queries import RANGES, TelemetryUnavailable
from tenants.selectors import tenants_visible_to


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
