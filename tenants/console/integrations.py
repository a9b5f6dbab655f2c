"""Integrations page: connect, edit and disconnect Shopify, WhatsApp, n8n, Clerk and the LLM
(secret fields are write-only: never rendered back, only whether each is set), with each
provider's webhook URL and the setup to do on its side."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from tenants.audit import audit_record
from tenants.console.access import TenantAccess, actor_of, tenant_for
from tenants.roles import Capability
from tenants.scope import tenant_read_scope, tenant_scope


def _providers() -> dict[str, Any]:
    """The declared providers (integrations.providers), in the console's order."""
    from integrations.providers import providers

    return providers()


def connect_form(provider: str, data: Any = None, *, editing: bool = False) -> forms.Form:
    """The provider's form: its settings, its secrets (write-only: editing, blank keeps the
    stored one), and for each optional secret a box to clear it explicitly."""
    spec = _providers()[provider]
    required_secrets = spec.required_secrets
    fields: dict[str, forms.Field] = {
        name: forms.CharField(max_length=300, required=name in spec.required_settings)
        for name in spec.settings
    }
    fields.update(
        {
            name: forms.CharField(
                max_length=500,
                required=name in required_secrets and not editing,
                widget=forms.PasswordInput(render_value=False),
            )
            for name in spec.secrets
        }
    )
    fields.update(
        {
            f"clear_{name}": forms.BooleanField(required=False, label=f"Clear {name}")
            for name in spec.secrets
            if name not in required_secrets
        }
    )
    return type(f"{provider.title()}Form", (forms.Form,), fields)(data, prefix=provider)


@login_required
@require_http_methods(["GET", "POST"])
def integrations(request: HttpRequest, slug: str) -> HttpResponse:
    from integrations.services import integration_connect, integration_credentials_edit

    posting = request.method == "POST"
    access = tenant_for(
        request,
        slug,
        action="integration.connect" if posting else "",
        need=Capability.INTEGRATIONS if posting else Capability.READ,
    )
    specs = _providers()
    forms_by_provider = {p: connect_form(p) for p in specs}
    status = 200
    if request.method == "POST":
        provider = request.POST.get("provider", "")
        if provider not in specs:
            return render(
                request,
                "403.html",
                {"exception": f"provider must be one of {', '.join(specs)}"},
                status=400,
            )
        from integrations.models import IntegrationConnection

        with tenant_read_scope(access.tenant.pk):
            editing = IntegrationConnection.objects.filter(
                tenant=access.tenant, provider=provider
            ).exists()
        form = forms_by_provider[provider] = connect_form(provider, request.POST, editing=editing)
        if form.is_valid():
            settings_fields, secret_fields = specs[provider].settings, specs[provider].secrets
            config = {k: form.cleaned_data[k] for k in settings_fields if form.cleaned_data.get(k)}
            secrets = {k: form.cleaned_data[k] for k in secret_fields if form.cleaned_data.get(k)}
            cleared = [k for k in secret_fields if form.cleaned_data.get(f"clear_{k}")]
            try:
                # Editing: a secret left blank keeps the stored one; a box clears it.
                credentials = integration_credentials_edit(
                    tenant=access.tenant, provider=provider, replace=secrets, clear=cleared
                )
                integration_connect(
                    tenant=access.tenant, provider=provider, config=config, credentials=credentials
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                _audit(
                    request,
                    access,
                    "integration.connect",
                    provider,
                    {
                        "config": sorted(config),
                        "secrets_replaced": sorted(secrets),
                        "secrets_cleared": sorted(cleared),
                    },
                )
                return redirect("console-integrations", slug=slug)
        status = 400
    return _page(request, access, forms_by_provider, status=status)


def _page(
    request: HttpRequest,
    access: TenantAccess,
    forms_by_provider: dict[str, forms.Form] | None = None,
    *,
    status: int = 200,
    probe: tuple[str, bool, str] | None = None,
    disconnect_error: tuple[str, str] | None = None,
) -> HttpResponse:
    from integrations.models import IntegrationConnection
    from integrations.services import integration_secrets_set

    specs = _providers()
    forms_by_provider = forms_by_provider or {p: connect_form(p) for p in specs}
    slug = access.tenant.slug
    with tenant_read_scope(access.tenant.pk):
        connected = {
            c.provider: c for c in IntegrationConnection.objects.filter(tenant=access.tenant)
        }
    secrets_set: dict[str, dict[str, bool]] = {}
    for p, connection in connected.items():
        form = forms_by_provider.get(p)
        if form is not None and not form.is_bound:  # show what is saved (secrets never)
            form.initial = {k: v for k, v in connection.config.items() if k in specs[p].settings}
        if p in specs:
            connection.tenant = access.tenant  # at hand: no read of the tenants table
            stored = integration_secrets_set(connection)
            secrets_set[p] = {name: stored.get(name, False) for name in specs[p].secrets}
    providers = [
        {
            "name": p,
            "form": forms_by_provider[p],
            "setup": spec.setup,
            "connection": connected.get(p),
            "secrets": secrets_set.get(p, {}),
            "webhook_url": request.build_absolute_uri(
                reverse("hook", kwargs={"provider": p, "tenant": slug})
            )
            if spec.webhook is not None
            else "",
            "probe": probe[1:] if probe and probe[0] == p else None,
            "disconnect_error": disconnect_error[1]
            if disconnect_error and disconnect_error[0] == p
            else "",
        }
        for p, spec in specs.items()
    ]
    return render(
        request,
        "console/integrations.html",
        {"access": access, "tenant": access.tenant, "tab": "integrations", "providers": providers},
        status=status,
    )


def _audit(
    request: HttpRequest, access: TenantAccess, action: str, provider: str, details: dict[str, Any]
) -> None:
    with tenant_scope(access.tenant.pk):
        audit_record(
            actor=actor_of(request),
            action=action,
            tenant=access.tenant,
            target=f"integration:{provider}",
            details=details,
        )


def _provider_access(
    request: HttpRequest, slug: str, provider: str, *, action: str
) -> TenantAccess:
    """An operator's (or admin's) access for `action` on one known provider (404 for another name)."""
    access = tenant_for(request, slug, action=action, need=Capability.INTEGRATIONS)
    if provider not in _providers():
        raise Http404(f"provider must be one of {', '.join(_providers())}")
    return access


@login_required
@require_POST
def integration_test(request: HttpRequest, slug: str, provider: str) -> HttpResponse:
    """Call the provider with the stored credentials and show what it answered."""
    from integrations.probe import integration_probe
    from smarteros.errors import OperationError

    access = _provider_access(request, slug, provider, action="integration.test")
    try:
        answer, ok = integration_probe(tenant=access.tenant, provider=provider), True
    except OperationError as exc:  # the provider's refusal (an expired token...), or not connected
        answer, ok = str(exc), False
    _audit(request, access, "integration.test", provider, {"ok": ok, "answer": answer[:300]})
    return _page(request, access, probe=(provider, ok, answer))


@login_required
@require_POST
def integration_disconnect_view(request: HttpRequest, slug: str, provider: str) -> HttpResponse:
    """Remove a connection and its credentials, after the provider's name is typed."""
    from integrations.services import integration_disconnect

    access = _provider_access(request, slug, provider, action="integration.disconnect")
    if request.POST.get("confirm", "").strip() != provider:
        return _page(
            request,
            access,
            status=400,
            disconnect_error=(provider, f"Type {provider} to confirm."),
        )
    if integration_disconnect(tenant=access.tenant, provider=provider):
        _audit(request, access, "integration.disconnect", provider, {"provider": provider})
    return redirect("console-integrations", slug=slug)
