"""Reads behind the console pages: tenants from PostgreSQL (as the platform, filtered to what the
person may see), figures from ClickHouse (one grouped query per page, never one per tenant)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery

from telemetry.queries import TelemetryUnavailable, TenantQuery, reader
from tenants.models import ApiKey, Membership, Tenant
from tenants.scope import dangerously_unscoped

SORTS = {
    "slug": "slug",
    "-slug": "-slug",
    "name": "name",
    "-name": "-name",
    "created": "created_at",
    "-created": "-created_at",
    "status": "status",
    "plan": "plan",
}
PER_PAGE = 50
DAY_SECONDS = 86400


@dataclass
class CallStats:
    calls: int = 0
    errors: int = 0
    last_call: datetime | None = None
    dead_letters: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def _visible(user: Any) -> QuerySet[Tenant]:
    tenants = Tenant.objects.all()
    if getattr(user, "is_superuser", False):
        return tenants
    return tenants.filter(pk__in=Membership.objects.filter(user_id=user.pk).values("tenant_id"))


def tenants_page(
    *,
    user: Any,
    search: str = "",
    status: str = "",
    plan: str = "",
    sort: str = "slug",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the tenants the person may see, filtered and sorted in SQL, each with
    `last_key_use` (the latest use of any of its keys)."""
    tenants = _visible(user)
    if search:
        tenants = tenants.filter(Q(slug__icontains=search) | Q(name__icontains=search))
    if status:
        tenants = tenants.filter(status=status)
    if plan:
        tenants = tenants.filter(plan=plan)
    last_use = (
        ApiKey.objects.filter(tenant_id=OuterRef("pk"), last_used_at__isnull=False)
        .order_by("-last_used_at")
        .values("last_used_at")[:1]
    )
    tenants = tenants.annotate(last_key_use=Subquery(last_use)).order_by(
        SORTS.get(sort, "slug"), "pk"
    )
    with dangerously_unscoped():
        result = Paginator(tenants, per_page).get_page(page)
        result.object_list = list(result.object_list)
    return result


def call_stats(
    *, slugs: list[str], window_seconds: int = DAY_SECONDS
) -> dict[str, CallStats] | None:
    """Calls, errors and the last call per tenant over the window (one grouped query), and the
    messages its dead-letter topics received (another); None
    when the telemetry store is unavailable (the page says so rather than showing zeros)."""
    if not slugs:
        return {}
    try:
        with reader() as client:
            rows = TenantQuery(slugs, window_seconds).run(
                "tenant, count(), countIf(status != 'ok'), max(time)",
                group_by="tenant",
                client=client,
            )
            dead = (
                TenantQuery(slugs, window_seconds, table="topic_messages", time_column="minute")
                .where("topic LIKE '%%.dlq'")
                .run("tenant, sum(messages)", group_by="tenant", client=client)
            )
    except TelemetryUnavailable:
        return None
    stats = {slug: CallStats() for slug in slugs}
    for tenant, calls, errors, last in rows:
        stats[tenant] = CallStats(int(calls), int(errors), last)
    for tenant, messages in dead:
        stats[tenant].dead_letters = int(messages)
    return stats
