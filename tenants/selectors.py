"""Tenant reads."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from tenants.models import Tenant


def tenants_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tenant]:
    """Platform admins see every tenant; other operators only those they are members of."""
    if not user.is_authenticated:
        return Tenant.objects.none()
    if getattr(user, "is_superuser", False):
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user_id=user.pk)


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
