"""Reads behind the console pages: tenants from PostgreSQL (as the platform, filtered to what the
person may see), figures from ClickHouse (one grouped query per page, never one per tenant)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery
from redis.exceptions import RedisError

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
    *, slugs: list[str], window_seconds: int = DAY_SECONDS, client: Any = None
) -> dict[str, CallStats] | None:
    """Calls, errors and the last call per tenant over the window (one grouped query), and the
    messages its dead-letter topics received (another): the figures the tenants list, the
    overview and the health page all show. Over `client` if given (a page's one connection);
    None when the telemetry store is unavailable (the page says so rather than showing zeros)."""
    if not slugs:
        return {}
    try:
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(reader())
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


def group_freshness(group: str) -> dict[str, Any]:
    """How current the figures a consumer group writes are, from its members' own reports (as
    /readyz reads them): caught up as of its last report, or how far behind; `running` False
    if no member reports (its figures then stop where it stopped). The topic counter's group
    stands behind topic and dead-letter counts, the telemetry sink's behind calls and errors."""
    from smarteros.events.progress import consumer_groups_status

    try:
        status = next((s for s in consumer_groups_status() if s.group == group), None)
    except RedisError:
        status = None
    if status is None:
        return {"running": False}
    behind = status.lag > 0
    return {
        "running": True,
        "lag": status.lag,
        "seconds": round(status.last_progress_seconds if behind else status.silent_seconds),
        "stalled": status.stalled,
    }


def counts_freshness() -> dict[str, Any]:
    """How current topic and dead-letter counts are (the topic counter's reports)."""
    from telemetry.counter import GROUP

    return group_freshness(GROUP)


def calls_freshness(*, last_call: datetime | None) -> dict[str, Any]:
    """How current call and error figures are (the telemetry sink's reports). When the sink
    does not report, `last_call` (the newest call among the figures shown) is the latest
    moment they are known to reach, as `last_seconds` ago."""
    from django.utils import timezone

    from telemetry.sink import GROUP

    fresh = group_freshness(GROUP)
    if not fresh["running"] and last_call is not None:
        if timezone.is_naive(last_call):
            last_call = timezone.make_aware(last_call, timezone.get_current_timezone())
        fresh["last_seconds"] = max(0, round((timezone.now() - last_call).total_seconds()))
    return fresh
