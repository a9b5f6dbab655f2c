"""Who may see and do what in the console.

A person's role in a tenant is a rank of `tenants.roles` (viewer, operator, tenant admin,
platform admin), and what a page lets them do is a capability of that table: pages ask for a
capability, never for a role. A tenant the person may not see is refused with the same words
whether or not it exists, so a slug cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from tenants.audit import audit_refusal
from tenants.models import Membership, Tenant
from tenants.roles import (
    LEAST_RANK,
    ROLE_LABELS,
    Capability,
    Rank,
    least_role_label,
    rank_may,
    rank_of,
)
from tenants.scope import dangerously_unscoped

Role = Rank  # the console's name for a person's rank in a tenant


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: Rank

    def may(self, capability: Capability) -> bool:
        return rank_may(self.role, capability)

    @property
    def can_operate(self) -> bool:
        """Replays, exports, integrations: operators and above."""
        return self.may(Capability.INTEGRATIONS)

    @property
    def can_change(self) -> bool:
        """People, keys, lifecycle requests, the Django admin: tenant admins and above."""
        return self.may(Capability.PEOPLE)

    @property
    def is_platform(self) -> bool:
        return self.may(Capability.PLATFORM)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


def actor_of(request: HttpRequest) -> str:
    """How the audit log names the person behind a request."""
    return f"user:{request.user.get_username()}"


def is_platform_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))


def role_for(*, user: Any, tenant_id: int) -> Rank | None:
    """The person's rank in one tenant, or None if they may not see it. A membership whose role
    the table does not know reads and does nothing else."""
    if not getattr(user, "is_authenticated", False):
        return None
    if is_platform_admin(user):
        return Rank.PLATFORM
    with dangerously_unscoped():
        role = (
            Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id)
            .values_list("role", flat=True)
            .first()
        )
    if role is None:
        return None
    return rank_of(role) or Rank.VIEWER


def tenant_access(*, user: Any, slug: str) -> TenantAccess | None:
    """The tenant and the person's role in it, or None if they may not see it (or it does not
    exist: the two are not told apart)."""
    with dangerously_unscoped():
        tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        return None
    role = role_for(user=user, tenant_id=tenant.pk)
    return None if role is None else TenantAccess(tenant=tenant, role=role)


def _capability_of_rank(rank: Rank) -> Capability:
    """A capability held from exactly `rank` up, for a page that asks for a rank."""
    held = [c for c, least in LEAST_RANK.items() if least == rank]
    return held[0] if held else Capability.PLATFORM


def not_visible(slug: str) -> PermissionDenied:
    return PermissionDenied(f"No tenant {slug} among the ones you may see.")


def tenant_for(
    request: HttpRequest,
    slug: str,
    *,
    action: str = "",
    need: Capability | Rank = Capability.READ,
) -> TenantAccess:
    """The tenant `slug` if the person's role there holds `need` (a capability of the table, or
    at least a rank); PermissionDenied (403) with a clear message otherwise. A refused change
    (`action` given) is audited."""
    if isinstance(need, Rank):
        need = _capability_of_rank(need)
    access = tenant_access(user=request.user, slug=slug)
    if access is None:
        if action:
            audit_refusal(
                actor=actor_of(request),
                action=action,
                tenant=None,
                target=slug,
                reason="tenant not visible to this person",
            )
        raise not_visible(slug)
    if not access.may(need):
        reason = (
            "Only platform admins may do this."
            if need == Capability.PLATFORM
            else f"Your role for {slug} is {access.role_label}: {least_role_label(need)} "
            "may do this."
        )
        if action:
            audit_refusal(
                actor=actor_of(request),
                action=action,
                tenant=access.tenant,
                target=slug,
                reason=reason,
            )
        raise PermissionDenied(reason)
    return access


def require_platform(request: HttpRequest, *, action: str) -> None:
    """PermissionDenied (audited) unless the person is a platform admin."""
    if not is_platform_admin(request.user):
        audit_refusal(
            actor=actor_of(request),
            action=action,
            tenant=None,
            target="",
            reason="platform admins only",
        )
        raise PermissionDenied("Only platform admins may do this.")
