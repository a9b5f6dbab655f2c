"""Lifecycle page: plan and limits, suspend and resume (platform admins, with a reason), request
deletion and cancel it (tenant admins too). Destructive actions ask for the slug to be typed."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tenants.console.access import Role, actor_of, tenant_for
from tenants.lifecycle import (
    LifecycleRefused,
    tenant_delete_cancel,
    tenant_plan_set,
    tenant_resume,
    tenant_suspend,
)
from tenants.models import Tenant
from tenants.provisioning import tenant_delete_request

# action -> (role needed, needs the slug typed)
ACTIONS = {
    "suspend": (Role.PLATFORM, True),
    "resume": (Role.PLATFORM, False),
    "delete": (Role.ADMIN, True),
    "cancel_delete": (Role.ADMIN, False),
}


class PlanForm(forms.Form):
    plan = forms.ChoiceField(choices=Tenant.Plan.choices)
    rate_limit_per_minute = forms.IntegerField(
        min_value=1, required=False, help_text="Empty: the platform default."
    )
    reason = forms.CharField(max_length=300, required=True)


class LifecycleForm(forms.Form):
    reason = forms.CharField(max_length=300, required=True)
    confirm = forms.CharField(max_length=40, required=False, label="Type the slug to confirm")

    def __init__(self, *args: object, slug: str, needs_confirm: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.slug, self.needs_confirm = slug, needs_confirm

    def clean_confirm(self) -> str:
        value = str(self.cleaned_data.get("confirm", "")).strip()
        if self.needs_confirm and value != self.slug:
            raise forms.ValidationError(f"Type {self.slug} to confirm.")
        return value


@login_required
@require_http_methods(["GET", "POST"])
def lifecycle(request: HttpRequest, slug: str) -> HttpResponse:
    posted = request.POST.get("action", "") if request.method == "POST" else ""
    need = ACTIONS[posted][0] if posted in ACTIONS else Role.VIEWER
    access = tenant_for(request, slug, action=f"tenant.{posted}" if posted else "", need=need)
    forms_by_action = {
        name: LifecycleForm(prefix=name, slug=slug, needs_confirm=confirm)
        for name, (_, confirm) in ACTIONS.items()
    }
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            return render(
                request,
                "console/lifecycle.html",
                _context(access, forms_by_action, "Unknown action."),
                status=400,
            )
        confirm = ACTIONS[action][1]
        form = LifecycleForm(request.POST, prefix=action, slug=slug, needs_confirm=confirm)
        forms_by_action[action] = form
        if form.is_valid():
            reason, actor, tenant = form.cleaned_data["reason"], actor_of(request), access.tenant
            try:
                if action == "suspend":
                    tenant_suspend(tenant=tenant, actor=actor, reason=reason)
                elif action == "resume":
                    tenant_resume(tenant=tenant, actor=actor, reason=reason)
                elif action == "delete":
                    tenant_delete_request(tenant=tenant, actor=actor)
                else:
                    tenant_delete_cancel(tenant=tenant, actor=actor, reason=reason)
                return redirect("console-lifecycle", slug=slug)
            except LifecycleRefused as exc:
                error = str(exc)
        return render(
            request, "console/lifecycle.html", _context(access, forms_by_action, error), status=400
        )
    return render(request, "console/lifecycle.html", _context(access, forms_by_action, error))


def _context(
    access: object,
    forms_by_action: dict[str, LifecycleForm],
    error: str,
    plan_form: PlanForm | None = None,
) -> dict[str, object]:
    tenant = access.tenant  # type: ignore[attr-defined]
    return {
        "plan_form": plan_form
        or PlanForm(
            prefix="plan",
            initial={"plan": tenant.plan, "rate_limit_per_minute": tenant.rate_limit_per_minute},
        ),
        "access": access,
        "tenant": tenant,
        "tab": "lifecycle",
        "forms": forms_by_action,
        "error": error,
        "grace_days": settings.TENANT_DELETION_GRACE_DAYS,
    }


@login_required
@require_http_methods(["POST"])
def plan(request: HttpRequest, slug: str) -> HttpResponse:
    """Plan and rate limit: a platform admin's decision, with a reason, audited."""
    access = tenant_for(request, slug, action="tenant.plan_set", need=Role.PLATFORM)
    form = PlanForm(request.POST, prefix="plan")
    if form.is_valid():
        tenant_plan_set(
            tenant=access.tenant,
            actor=actor_of(request),
            plan=form.cleaned_data["plan"],
            rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            reason=form.cleaned_data["reason"],
        )
        return redirect("console-lifecycle", slug=slug)
    forms_by_action = {
        name: LifecycleForm(prefix=name, slug=slug, needs_confirm=confirm)
        for name, (_, confirm) in ACTIONS.items()
    }
    return render(
        request,
        "console/lifecycle.html",
        _context(access, forms_by_action, "", plan_form=form),
        status=400,
    )
