"""A tenant's outside effects in the console: every effect, filtered by state, newest first,
with why a failed one failed; a tenant admin retries a failed one here (audited), as a
platform admin may in the Django admin."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from effects.models import Effect
from effects.services import effect_retry
from smarteros.parsing import parse_page
from tenants.audit import audit_record
from tenants.console.access import Role, actor_of, tenant_for
from tenants.scope import tenant_read_scope, tenant_scope

PER_PAGE = 50


@login_required
def effects(request: HttpRequest, slug: str) -> HttpResponse:
    access = tenant_for(request, slug)
    state = request.GET.get("state", "")
    if state not in Effect.State.values:
        state = ""
    with tenant_read_scope(access.tenant.pk):
        listed = Effect.objects.filter(tenant=access.tenant).only(
            "id", "kind", "key", "state", "attempts", "last_error", "created_at", "updated_at"
        )
        if state:
            listed = listed.filter(state=state)
        page = Paginator(listed.order_by("-updated_at", "-id"), PER_PAGE).get_page(
            parse_page(request.GET.get("page"))
        )
        page.object_list = list(page.object_list)
    return render(
        request,
        "console/effects.html",
        {
            "access": access,
            "tenant": access.tenant,
            "tab": "overview",
            "page": page,
            "state": state,
            "states": Effect.State.values,
            "query": urlencode({"state": state} if state else {}),
        },
    )


@login_required
@require_POST
def effect_retry_view(request: HttpRequest, slug: str, effect_id: int) -> HttpResponse:
    """Queue a failed effect again (attempts from zero); one that is not failed is left alone."""
    access = tenant_for(request, slug, action="effect.retry", need=Role.ADMIN)
    with tenant_scope(access.tenant.pk):
        effect = Effect.objects.filter(tenant=access.tenant, pk=effect_id).first()
        if effect is None:
            raise Http404(f"No effect {effect_id} in {slug}.")
        if effect_retry(effect=effect):
            audit_record(
                actor=actor_of(request),
                action="effect.retry",
                tenant=access.tenant,
                target=f"{effect.kind}:{effect.key}",
            )
    return redirect(f"{reverse('console-effects', args=[slug])}?state=failed")
