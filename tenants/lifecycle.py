"""Suspending, resuming and cancelling a deletion: platform decisions recorded with who and why.
(Requesting deletion is tenants.provisioning.tenant_delete_request.)"""

from __future__ import annotations

from django.utils import timezone

from tenants.audit import audit_record
from tenants.models import AuditEvent, Tenant
from tenants.scope import dangerously_unscoped


class LifecycleRefused(Exception):
    """The change does not apply to the tenant in its current state."""


def _transition(
    *,
    tenant: Tenant,
    actor: str,
    action: str,
    reason: str,
    allowed: set[str],
    to: str,
    **fields: object,
) -> Tenant:
    with dangerously_unscoped():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if current.status not in allowed:
            raise LifecycleRefused(
                f"{current.slug} is {current.status}; cannot {action.split('.')[-1]} it"
            )
        Tenant.objects.filter(pk=tenant.pk).update(status=to, updated_at=timezone.now(), **fields)
        audit_record(
            actor=actor,
            action=action,
            tenant=current,
            target=current.slug,
            details={"reason": reason, "from": current.status, "to": to},
        )
        current.refresh_from_db()
    return current


def tenant_suspend(*, tenant: Tenant, actor: str, reason: str) -> Tenant:
    """Suspend an active tenant: its keys, MCP sessions and webhooks are refused until resumed."""
    return _transition(
        tenant=tenant,
        actor=actor,
        action="tenant.suspend",
        reason=reason,
        allowed={Tenant.Status.ACTIVE},
        to=Tenant.Status.SUSPENDED,
    )


def tenant_resume(*, tenant: Tenant, actor: str, reason: str) -> Tenant:
    """Make a suspended tenant active again."""
    return _transition(
        tenant=tenant,
        actor=actor,
        action="tenant.resume",
        reason=reason,
        allowed={Tenant.Status.SUSPENDED},
        to=Tenant.Status.ACTIVE,
    )


def tenant_delete_cancel(*, tenant: Tenant, actor: str, reason: str = "") -> Tenant:
    """Withdraw a deletion request while its grace period runs (before deprovisioning)."""
    if tenant.deprovisioned_at is not None:
        raise LifecycleRefused(f"{tenant.slug} was already deprovisioned")
    with dangerously_unscoped():
        request = (
            AuditEvent.objects.filter(tenant_id=tenant.pk, action="tenant.delete_requested")
            .order_by("-created_at", "-pk")
            .first()
        )
    back = (request.details.get("from") if request else None) or Tenant.Status.ACTIVE
    if back == Tenant.Status.DELETED:
        back = Tenant.Status.ACTIVE
    return _transition(
        tenant=tenant,
        actor=actor,
        action="tenant.delete_cancelled",
        reason=reason,
        allowed={Tenant.Status.DELETED},
        to=back,
        deleted_at=None,
    )


def tenant_plan_set(
    *, tenant: Tenant, actor: str, plan: str, rate_limit_per_minute: int | None, reason: str = ""
) -> Tenant:
    """Set what the platform sells a tenant: its plan and its per-minute limit (None: the
    platform default). A platform admin's decision, never a tenant's own key's."""
    if plan not in Tenant.Plan.values:
        raise LifecycleRefused(f"plan must be one of {', '.join(Tenant.Plan.values)}")
    with dangerously_unscoped():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        before = {"plan": current.plan, "rate_limit_per_minute": current.rate_limit_per_minute}
        Tenant.objects.filter(pk=tenant.pk).update(
            plan=plan, rate_limit_per_minute=rate_limit_per_minute, updated_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action="tenant.plan_set",
            tenant=current,
            target=current.slug,
            details={
                "reason": reason,
                "from": before,
                "to": {"plan": plan, "rate_limit_per_minute": rate_limit_per_minute},
            },
        )
        current.refresh_from_db()
    return current
