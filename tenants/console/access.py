"""Who may see and do what in the console.

Three roles: a tenant viewer reads, a tenant admin also changes their own tenants, a platform
admin (superuser) does everything, including what the platform sells (plan, limits, creation,
suspension). A tenant the person may not see is refused with the same words whether or not it
exists, so a slug cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from tenants.audit import audit_refusal
from tenants.models import Membership, Tenant
from tenants.scope import dangerously_unscoped


class Role(IntEnum):
    VIEWER = 1
    ADMIN = 2
    PLATFORM = 3


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: Role

    @property
    def can_change(self) -> bool:
        return self.role >= Role.ADMIN

    @property
    def is_platform(self) -> bool:
        return self.role == Role.PLATFORM


def actor_of(request: HttpRequest) -> str:
    """How the audit log names the person behind a request."""
    return f"user:{request.user.get_username()}"


def is_platform_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))


def role_for(*, user: Any, tenant_id: int) -> Role | None:
    """The person's role for one tenant, or None if they may not see it."""
    if not getattr(user, "is_authenticated", False):
        return None
    if is_platform_admin(user):
        return Role.PLATFORM
    with dangerously_unscoped():
        role = (
            Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id)
            .values_list("role", flat=True)
            .first()
        )
    if role is None:
        return None
    return Role.ADMIN if role == Membership.Role.ADMIN else Role.VIEWER


def tenant_access(*, user: Any, slug: str) -> TenantAccess | None:
    """The tenant and the person's role in it, or None if they may not see it (or it does not
    exist: the two are not told apart)."""
    with dangerously_unscoped():
        tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        return None
    role = role_for(user=user, tenant_id=tenant.pk)
    return None if role is None else TenantAccess(tenant=tenant, role=role)


def not_visible(slug: str) -> PermissionDenied:
    return PermissionDenied(f"No tenant {slug} among the ones you may see.")


def tenant_for(
    request: HttpRequest, slug: str, *, action: str = "", need: Role = Role.VIEWER
) -> TenantAccess:
    """The tenant `slug` if the person holds at least `need` for it; PermissionDenied (403) with a
    clear message otherwise. A refused change (`action` given) is audited."""
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
    if access.role < need:
        reason = (
            "Only platform admins may do this."
            if need == Role.PLATFORM
            else f"Your role for {slug} is read-only: a tenant admin may do this."
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
