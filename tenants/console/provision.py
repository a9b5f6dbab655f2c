"""Creating a tenant and watching it provision (platform admins): the work runs in a Celery
worker; the page follows it over a websocket (consumers.ProvisioningConsumer)."""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from mcp_tools.management.commands.mcp_config import claude_desktop_entry
from tenants.audit import audit_record
from tenants.console.access import actor_of, require_platform, tenant_for
from tenants.console.progress import first_key_take, first_key_waiting
from tenants.console.steps import step_states
from tenants.models import Tenant
from tenants.operations import RATE_LIMIT_MAX
from tenants.roles import Capability
from tenants.scope import dangerously_unscoped
from tenants.services import tenant_create


class TenantForm(forms.Form):
    slug = forms.CharField(
        max_length=40, help_text="Lowercase letters, digits, hyphens; never changes."
    )
    name = forms.CharField(max_length=200)
    plan = forms.ChoiceField(choices=Tenant.Plan.choices)
    contact_email = forms.EmailField(required=False)
    rate_limit_per_minute = forms.IntegerField(
        min_value=1,
        max_value=RATE_LIMIT_MAX,
        required=False,
        help_text="Empty: the platform default.",
    )


def provision_enqueue(*, tenant: Tenant, actor: str) -> None:
    """Queue the provisioning task once the tenant row is committed."""
    from tenants.tasks import console_provision

    transaction.on_commit(lambda: console_provision.delay(tenant.pk, actor), using="platform")


@login_required
@require_http_methods(["GET", "POST"])
def tenant_create_view(request: HttpRequest) -> HttpResponse:
    require_platform(request, action="tenant.create")
    form = TenantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with dangerously_unscoped():
                if Tenant.objects.filter(slug=data["slug"]).exists():
                    raise ValidationError({"slug": "A tenant with this slug exists."})
                tenant = tenant_create(
                    slug=data["slug"],
                    name=data["name"],
                    plan=data["plan"],
                    contact_email=data["contact_email"] or "",
                )
                if data["rate_limit_per_minute"]:
                    Tenant.objects.filter(pk=tenant.pk).update(
                        rate_limit_per_minute=data["rate_limit_per_minute"]
                    )
                audit_record(
                    actor=actor_of(request),
                    action="tenant.create",
                    tenant=tenant,
                    target=tenant.slug,
                    details={"plan": tenant.plan},
                )
                provision_enqueue(tenant=tenant, actor=actor_of(request))
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            return redirect("console-provision", slug=tenant.slug)
    return render(
        request, "console/tenant_create.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
def provision_page(request: HttpRequest, slug: str) -> HttpResponse:
    access = tenant_for(request, slug)
    return render(
        request,
        "console/provision.html",
        {
            "access": access,
            "tenant": access.tenant,
            "tab": "provision",
            "steps": step_states(access.tenant),
            "first_key_waiting": access.is_platform and first_key_waiting(tenant=access.tenant),
        },
    )


@login_required
@require_POST
def provision_retry(request: HttpRequest, slug: str) -> HttpResponse:
    access = tenant_for(request, slug, action="tenant.provision", need=Capability.PLATFORM)
    if access.tenant.status == Tenant.Status.DELETED:
        return render(
            request,
            "403.html",
            {"exception": f"{slug} is deleted; cancel the deletion first."},
            status=409,
        )
    with dangerously_unscoped():
        audit_record(
            actor=actor_of(request), action="tenant.provision", tenant=access.tenant, target=slug
        )
        provision_enqueue(tenant=access.tenant, actor=actor_of(request))
    if request.headers.get("HX-Request"):
        return HttpResponse(status=204)
    return redirect("console-provision", slug=slug)


@never_cache  # shows the first key once: no copy in any cache
@login_required
@require_POST
def first_key(request: HttpRequest, slug: str) -> HttpResponse:
    """The first API key and its Claude Desktop entry, shown once."""
    access = tenant_for(request, slug, action="tenant.first_key", need=Capability.PLATFORM)
    secret = first_key_take(tenant=access.tenant)
    if secret is not None:
        with dangerously_unscoped():
            audit_record(
                actor=actor_of(request),
                action="tenant.first_key_shown",
                tenant=access.tenant,
                target=slug,
            )
    snippet = (
        json.dumps(claude_desktop_entry(slug=slug, api_key=secret), indent=2) if secret else ""
    )
    return render(
        request,
        "console/_first_key.html",
        {"tenant": access.tenant, "secret": secret, "snippet": snippet},
    )
