"""Tenant reads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from smarteros.db import row_by_pk
from tenants.models import Tenant


def tenant_get(*, tenant_id: int) -> Tenant:
    """The tenant row, as visible in the current scope (Tenant.DoesNotExist otherwise). The
    hottest read of the platform, hence the compiled-once statement."""
    return row_by_pk(Tenant, tenant_id)


def tenants_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> list[Tenant]:
    """Platform admins see every tenant; other operators only those they are members of. The
    tenants table is under row-level security, so this is read as the platform."""
    from tenants.scope import dangerously_unscoped

    if not user.is_authenticated:
        return []
    with dangerously_unscoped():
        if getattr(user, "is_superuser", False):
            return list(Tenant.objects.all())
        return list(Tenant.objects.filter(pk__in=tenant_ids_of(user_id=user.pk)))


def tenant_ids_of(*, user_id: int, roles: tuple[str, ...] | None = None) -> list[int]:
    """The tenants an operator is a member of (optionally with one of `roles`). Memberships are
    tenant-owned rows, so finding which tenants a person may act for is a platform-level read."""
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        memberships = Membership.objects.filter(user_id=user_id)
        if roles is not None:  # an empty tuple: no role, no tenant
            memberships = memberships.filter(role__in=roles)
        return list(memberships.values_list("tenant_id", flat=True))


def tenant_metrics(*, tenant: Tenant, window_minutes: int) -> dict[str, object]:
    """Figures for one tenant: from PostgreSQL (keys, sessions, servers, pending events) and from
    the telemetry store (calls, errors); the latter degrade to zero with telemetry_available=False."""
    from datetime import timedelta

    from django.utils import timezone

    from mcp_tools.models import AgentSession, UpstreamServer
    from smarteros.models import OutboxEvent
    from telemetry.queries import TelemetryUnavailable, call_totals
    from tenants.models import ApiKey

    since = timezone.now() - timedelta(minutes=window_minutes)
    try:
        calls, errors = call_totals(tenant=tenant.slug, window_minutes=window_minutes)
        available = True
    except TelemetryUnavailable:
        calls, errors, available = 0, 0, False
    return {
        "tenant": tenant.slug,
        "window_minutes": window_minutes,
        "active_api_keys": ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).count(),
        "agent_sessions": AgentSession.objects.filter(tenant=tenant, created_at__gte=since).count(),
        "upstream_servers": UpstreamServer.objects.filter(tenant=tenant).count(),
        "events_pending": OutboxEvent.objects.filter(
            tenant_id=tenant.pk, sent_at__isnull=True
        ).count(),
        "calls": calls,
        "errors": errors,
        "telemetry_available": available,
    }
