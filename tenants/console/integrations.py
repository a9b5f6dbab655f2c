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

# provider -> (settings fields, secret fields, provider-side setup)
PROVIDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "shopify": (
        ("shop_domain", "api_version", "api_base_url"),
        ("access_token", "app_secret"),
        "In the Shopify admin: Settings → Notifications → Webhooks, add the URL below (JSON) "
        "for the topics you need; the app secret signs them.",
    ),
    "whatsapp": (
        ("phone_number_id", "verify_token", "api_base_url", "llm_base_url", "llm_model"),
        ("access_token", "app_secret", "llm_api_key"),
        "In the Meta developer console: WhatsApp → Configuration, set the callback URL below and "
        "the verify token, and subscribe to messages; the app secret signs deliveries.",
    ),
    "n8n": (
        ("base_url", "webhook_prefix", "api_prefix"),
        ("api_key", "webhook_secret"),
        "In n8n: add an HTTP Request node posting to the URL below, signed with the webhook secret.",
    ),
    "clerk": (
        ("instance_id",),
        ("signing_secret",),
        "In the Clerk Dashboard: Webhooks → Add Endpoint with the URL below; paste the "
        "endpoint's signing secret (whsec_...).",
    ),
    "llm": (
        ("provider", "base_url", "model", "max_tokens", "daily_token_budget"),
        ("api_key",),
        "The LLM that writes the bot's replies: provider anthropic or openai_compatible (then a "
        "base_url), the model, and the tenant's own API key. Empty settings use the platform's; "
        "daily_token_budget may only lower the platform's budget.",
    ),
}
# Providers that deliver webhooks to SmarterOS (the LLM only answers calls).
WEBHOOK_PROVIDERS = ("shopify", "whatsapp", "n8n", "clerk")


def connect_form(provider: str, data: Any = None, *, editing: bool = False) -> forms.Form:
    """The provider's form: its settings, its secrets (write-only: editing, blank keeps the
    stored one), and for each optional secret a box to clear it explicitly."""
    settings_fields, secret_fields, _ = PROVIDERS[provider]
    from integrations.services import REQUIRED

    required_settings, required_secrets = REQUIRED[provider]
    fields: dict[str, forms.Field] = {
        name: forms.CharField(max_length=300, required=name in required_settings)
        for name in settings_fields
    }
    fields.update(
        {
            name: forms.CharField(
                max_length=500,
                required=name in required_secrets and not editing,
                widget=forms.PasswordInput(render_value=False),
            )
            for name in secret_fields
        }
    )
    fields.update(
        {
            f"clear_{name}": forms.BooleanField(required=False, label=f"Clear {name}")
            for name in secret_fields
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
    forms_by_provider = {p: connect_form(p) for p in PROVIDERS}
    status = 200
    if request.method == "POST":
        provider = request.POST.get("provider", "")
        if provider not in PROVIDERS:
            return render(
                request,
                "403.html",
                {"exception": f"provider must be one of {', '.join(PROVIDERS)}"},
                status=400,
            )
        from integrations.models import IntegrationConnection

        with tenant_read_scope(access.tenant.pk):
            editing = IntegrationConnection.objects.filter(
                tenant=access.tenant, provider=provider
            ).exists()
        form = forms_by_provider[provider] = connect_form(provider, request.POST, editing=editing)
        if form.is_valid():
            settings_fields, secret_fields, _ = PROVIDERS[provider]
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

    forms_by_provider = forms_by_provider or {p: connect_form(p) for p in PROVIDERS}
    slug = access.tenant.slug
    with tenant_read_scope(access.tenant.pk):
        connected = {
            c.provider: c for c in IntegrationConnection.objects.filter(tenant=access.tenant)
        }
    secrets_set: dict[str, dict[str, bool]] = {}
    for p, connection in connected.items():
        form = forms_by_provider.get(p)
        if form is not None and not form.is_bound:  # show what is saved (secrets never)
            form.initial = {k: v for k, v in connection.config.items() if k in PROVIDERS[p][0]}
        if p in PROVIDERS:
            connection.tenant = access.tenant  # at hand: no read of the tenants table
            stored = integration_secrets_set(connection)
            secrets_set[p] = {name: stored.get(name, False) for name in PROVIDERS[p][1]}
    providers = [
        {
            "name": p,
            "form": forms_by_provider[p],
            "setup": PROVIDERS[p][2],
            "connection": connected.get(p),
            "secrets": secrets_set.get(p, {}),
            "webhook_url": request.build_absolute_uri(reverse(f"hook-{p}", kwargs={"tenant": slug}))
            if p in WEBHOOK_PROVIDERS
            else "",
            "probe": probe[1:] if probe and probe[0] == p else None,
            "disconnect_error": disconnect_error[1]
            if disconnect_error and disconnect_error[0] == p
            else "",
        }
        for p in PROVIDERS
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
    if provider not in PROVIDERS:
        raise Http404(f"provider must be one of {', '.join(PROVIDERS)}")
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
