"""Lifecycle page: plan and limits (platform admins), and the lifecycle transitions the table in
`tenants.lifecycle` offers this person in the tenant's state, each with a reason. Destructive
actions ask for the slug to be typed."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tenants.audit import audit_refusal
from tenants.console.access import TenantAccess, actor_of, tenant_for
from tenants.lifecycle import (
    TRANSITIONS,
    Action,
    Actor,
    LifecycleRefused,
    lifecycle_actions,
    tenant_lifecycle_apply,
    tenant_plan_set,
)
from tenants.models import Tenant
from tenants.operations import RATE_LIMIT_MAX
from tenants.roles import Capability

# Destructive actions ask for the slug to be typed.
CONFIRM = {Action.SUSPEND, Action.REQUEST_DELETION}
ACTIONS = {action.value: action in CONFIRM for action in Action}


def _actor(access: TenantAccess) -> Actor:
    """Who the lifecycle table sees; only asked of people who hold Capability.LIFECYCLE."""
    return Actor.PLATFORM if access.is_platform else Actor.TENANT_ADMIN


def _capability_needed(action: str) -> Capability:
    """What the lifecycle table asks of whoever makes `action` in some state (a tenant admin's
    or only a platform admin's); the table then decides for the tenant's actual state."""
    who = set().union(*(row.who for row in TRANSITIONS if row.action == action))
    return Capability.LIFECYCLE if Actor.TENANT_ADMIN in who else Capability.PLATFORM


class PlanForm(forms.Form):
    plan = forms.ChoiceField(choices=Tenant.Plan.choices)
    rate_limit_per_minute = forms.IntegerField(
        min_value=1,
        max_value=RATE_LIMIT_MAX,
        required=False,
        help_text="Empty: the platform default.",
    )
    llm_tokens_per_day = forms.IntegerField(
        min_value=0,
        max_value=10**12,
        required=False,
        label="LLM tokens per day",
        help_text="Empty: the plan's budget; 0: no budget.",
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
    need = _capability_needed(posted) if posted in ACTIONS else Capability.READ
    access = tenant_for(request, slug, action=f"tenant.{posted}" if posted else "", need=need)
    forms_by_action = {
        name: LifecycleForm(prefix=name, slug=slug, needs_confirm=confirm)
        for name, confirm in ACTIONS.items()
    }
    if request.method != "POST":
        return render(request, "console/lifecycle.html", _context(access, forms_by_action, ""))
    if posted not in ACTIONS:
        return render(
            request,
            "console/lifecycle.html",
            _context(access, forms_by_action, "Unknown action."),
            status=400,
        )
    form = LifecycleForm(request.POST, prefix=posted, slug=slug, needs_confirm=ACTIONS[posted])
    forms_by_action[posted] = form
    if not form.is_valid():
        return render(
            request, "console/lifecycle.html", _context(access, forms_by_action, ""), status=400
        )
    try:
        tenant_lifecycle_apply(
            tenant=access.tenant,
            action=posted,
            actor=_actor(access),
            actor_name=actor_of(request),
            reason=form.cleaned_data["reason"],
        )
    except LifecycleRefused as exc:
        # Audited like any refused change (throttled per person, action and tenant).
        audit_refusal(
            actor=actor_of(request),
            action=f"tenant.{posted}",
            tenant=access.tenant,
            target=slug,
            reason=str(exc),
        )
        return render(
            request,
            "console/lifecycle.html",
            _context(access, forms_by_action, str(exc)),
            status=403 if exc.forbidden else 409,
        )
    return redirect("console-lifecycle", slug=slug)


def _context(
    access: TenantAccess,
    forms_by_action: dict[str, LifecycleForm],
    error: str,
    plan_form: PlanForm | None = None,
) -> dict[str, object]:
    tenant = access.tenant
    offered = (
        [a.value for a in lifecycle_actions(tenant=tenant, actor=_actor(access))]
        if access.may(Capability.LIFECYCLE)
        else []
    )
    return {
        "offered": offered,
        "plan_form": plan_form
        or PlanForm(
            prefix="plan",
            initial={
                "plan": tenant.plan,
                "rate_limit_per_minute": tenant.rate_limit_per_minute,
                "llm_tokens_per_day": tenant.llm_tokens_per_day,
            },
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
    """Plan, rate limit and LLM budget: a platform admin's decision, with a reason, audited."""
    access = tenant_for(request, slug, action="tenant.plan_set", need=Capability.PLATFORM)
    form = PlanForm(request.POST, prefix="plan")
    if form.is_valid():
        tenant_plan_set(
            tenant=access.tenant,
            actor=actor_of(request),
            plan=form.cleaned_data["plan"],
            rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            llm_tokens_per_day=form.cleaned_data["llm_tokens_per_day"],
            reason=form.cleaned_data["reason"],
        )
        return redirect("console-lifecycle", slug=slug)
    forms_by_action = {
        name: LifecycleForm(prefix=name, slug=slug, needs_confirm=confirm)
        for name, confirm in ACTIONS.items()
    }
    return render(
        request,
        "console/lifecycle.html",
        _context(access, forms_by_action, "", plan_form=form),
        status=400,
    )
