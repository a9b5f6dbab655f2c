"""API keys page: list, create with scopes from the registry and an expiry (secret shown once),
revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from tenants.audit import audit_record
from tenants.console.access import TenantAccess, actor_of, tenant_for
from tenants.models import ApiKey, AuditEvent
from tenants.roles import Capability
from tenants.scope import dangerously_unscoped, tenant_read_scope, tenant_scope
from tenants.scopes import scope_choices, scope_presets
from tenants.services import api_key_create, api_key_revoke

# Days a new key lasts (0: never expires); a key that lives forever is a choice, not the default.
EXPIRY_CHOICES = [
    (7, "in 7 days"),
    (30, "in 30 days"),
    (90, "in 90 days"),
    (365, "in a year"),
    (0, "never"),
]
DEFAULT_EXPIRY_DAYS = 90


class ApiKeyForm(forms.Form):
    """A new key: nothing is pre-selected; a preset adds its permissions to those ticked."""

    name = forms.CharField(max_length=100)
    expires = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES,
        coerce=int,
        required=False,
        empty_value=None,
        initial=DEFAULT_EXPIRY_DAYS,
        help_text="After this the key is refused; issue a new one before.",
    )
    preset = forms.ChoiceField(required=False)
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)

    def __init__(self, *args: Any, platform_allowed: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups = scope_choices(platform_allowed=platform_allowed)
        self.presets = scope_presets()
        scopes = self.fields["scopes"]
        assert isinstance(scopes, forms.MultipleChoiceField)
        scopes.choices = [c for _, choices in self.groups for c in choices]
        preset = self.fields["preset"]
        assert isinstance(preset, forms.ChoiceField)
        preset.choices = [("", "none"), *((name, name) for name in self.presets)]

    def clean_expires(self) -> int:
        days: int | None = self.cleaned_data.get("expires")  # coerced by the field
        return DEFAULT_EXPIRY_DAYS if days is None else days

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = list(data.get("scopes") or [])
        chosen += [s for s in self.presets.get(data.get("preset") or "", []) if s not in chosen]
        if not chosen and "scopes" not in self.errors:
            self.add_error("scopes", "tick at least one permission, or pick a preset")
        data["scopes"] = chosen
        return data


def _page(
    request: HttpRequest, access: TenantAccess, form: ApiKeyForm, **extra: Any
) -> dict[str, Any]:
    with tenant_read_scope(access.tenant.pk):
        keys = list(ApiKey.objects.filter(tenant=access.tenant).order_by("-created_at"))
    # Who created each key: the audit entry of its creation (console or admin).
    with dangerously_unscoped():
        creators = dict(
            AuditEvent.objects.filter(
                tenant_id=access.tenant.pk,
                action__in=("api_key.create", "admin.add"),
                target__in=[f"tenants.ApiKey:{key.pk}" for key in keys],
            ).values_list("target", "actor")
        )
    for key in keys:
        key.creator = creators.get(f"tenants.ApiKey:{key.pk}", "")  # type: ignore[attr-defined]
    chosen = set(form["scopes"].value() or [])
    return {
        "access": access,
        "tenant": access.tenant,
        "tab": "keys",
        "keys": keys,
        "form": form,
        "groups": [
            (g, [(v, label, v in chosen) for v, label in choices]) for g, choices in form.groups
        ],
        **extra,
    }


@never_cache  # the answer to a create shows the new secret once: no copy in any cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":
        access = tenant_for(request, slug)
        form = ApiKeyForm(platform_allowed=access.is_platform)
        return render(request, "console/keys.html", _page(request, access, form))
    access = tenant_for(request, slug, action="api_key.create", need=Capability.KEYS)
    form = ApiKeyForm(request.POST, platform_allowed=access.is_platform)
    if form.is_valid():
        try:
            with tenant_scope(access.tenant.pk), transaction.atomic():
                issued = api_key_create(
                    tenant=access.tenant,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    platform_allowed=access.is_platform,
                    expires_at=timezone.now() + timedelta(days=days)
                    if (days := form.cleaned_data["expires"])
                    else None,
                )
                audit_record(
                    actor=actor_of(request),
                    action="api_key.create",
                    tenant=access.tenant,
                    target=f"tenants.ApiKey:{issued.api_key.pk}",
                    details={
                        "prefix": issued.api_key.prefix,
                        "scopes": issued.api_key.scopes,
                        "expires_at": issued.api_key.expires_at.isoformat()
                        if issued.api_key.expires_at
                        else None,
                    },
                )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            # The secret is in this response only; reloading the page does not show it again.
            fresh = ApiKeyForm(platform_allowed=access.is_platform)
            return render(
                request, "console/keys.html", _page(request, access, fresh, issued=issued)
            )
    return render(request, "console/keys.html", _page(request, access, form), status=400)


@login_required
@require_POST
def key_revoke(request: HttpRequest, slug: str, key_id: int) -> HttpResponse:
    access = tenant_for(request, slug, action="api_key.revoke", need=Capability.KEYS)
    with tenant_scope(access.tenant.pk):
        api_key = ApiKey.objects.filter(tenant=access.tenant, pk=key_id).first()
        if api_key is None:
            return render(
                request, "403.html", {"exception": f"No key {key_id} in {slug}."}, status=404
            )
        if request.POST.get("confirm") != "yes":
            return render(
                request,
                "console/key_revoke.html",
                {"access": access, "tenant": access.tenant, "tab": "keys", "key": api_key},
            )
        api_key_revoke(api_key=api_key)
        audit_record(
            actor=actor_of(request),
            action="api_key.revoke",
            tenant=access.tenant,
            target=f"tenants.ApiKey:{api_key.pk}",
            details={"prefix": api_key.prefix},
        )
    return redirect("console-keys", slug=slug)
