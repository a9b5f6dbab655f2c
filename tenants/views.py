from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.selectors import tenants_visible_to


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    tenants = tenants_visible_to(user=request.user)
    return render(request, "tenants/dashboard.html", {"tenants": tenants})
