"""A tenant's overview: status, provisioning, topics, rate limit, calls and errors,
integrations with their health, API keys, outside effects waiting or failed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

from integrations.providers import providers
from smarteros.events.catalog import tenant_dead_letter_topics, tenant_topics
from telemetry.queries import TelemetryUnavailable, TenantQuery, reader
from tenants.console.access import tenant_for
from tenants.console.queries import CallStats, call_stats, calls_freshness, counts_freshness
from tenants.console.steps import step_states
from tenants.models import ApiKey, Tenant
from tenants.ratelimit import rate_limit_usage
from tenants.scope import tenant_read_scope

DAY = 86400


def _telemetry(slug: str) -> dict[str, Any] | None:
    """Topic counts, the calls, errors and dead letters the tenants list shows (the same
    query), per-operation figures, recent errors and each provider's last call, over one
    ClickHouse connection; None when the store is unavailable."""
    try:
        with reader() as client:
            stats = call_stats(slugs=[slug], window_seconds=DAY, client=client)
            topics = TenantQuery([slug], DAY, table="topic_messages", time_column="minute").run(
                "topic, sum(messages)", group_by="topic", client=client
            )
            operations = TenantQuery([slug], DAY).run(
                "operation, count(), countIf(status != 'ok'), quantile(0.95)(latency_ms)",
                group_by="operation",
                order_by="count() DESC",
                limit=10,
                client=client,
            )
            errors = (
                TenantQuery([slug], DAY)
                .where("status != 'ok'")
                .run(
                    "time, operation, status, error_type",
                    order_by="time DESC",
                    limit=10,
                    client=client,
                )
            )
            last_calls = (
                TenantQuery([slug], 30 * DAY)
                .where("service IN %(providers)s", providers=tuple(providers()))
                .run("service, max(time), argMax(status, time)", group_by="service", client=client)
            )
    except TelemetryUnavailable:
        return None
    if stats is None:
        return None
    totals = stats.get(slug, CallStats())
    return {
        "topics": {name: int(count) for name, count in topics},
        "operations": [
            {"operation": o, "calls": int(c), "errors": int(e), "p95_ms": round(float(p), 1)}
            for o, c, e, p in operations
        ],
        "calls": totals.calls,
        "errors": totals.errors,
        "last_call": totals.last_call,
        "dead_letters": totals.dead_letters,
        "recent_errors": [
            {"time": t, "operation": o, "status": s, "error_type": e} for t, o, s, e in errors
        ],
        "last_calls": {service: (last, status) for service, last, status in last_calls},
    }


def topic_rows(slug: str, counts: dict[str, int]) -> list[dict[str, Any]]:
    """The tenant's topics, each followed by its dead-letter twin when that received messages
    in the window (`counts`, per topic name): a twin exists only once something was parked on
    it, and an empty one is noise beside the topic it serves."""
    rows = []
    for spec, twin in zip(tenant_topics(slug), tenant_dead_letter_topics(slug), strict=True):
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "dead_letter": False,
                "messages": counts.get(spec.name),
            }
        )
        if counts.get(twin.name):
            rows.append(
                {
                    "name": twin.name,
                    "description": twin.description,
                    "dead_letter": True,
                    "messages": counts[twin.name],
                }
            )
    return rows


def integrations_health(tenant: Tenant, last_calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Each connected provider with its last webhook received and its last call."""
    from integrations.models import IntegrationConnection, WebhookDelivery

    with tenant_read_scope(tenant.pk):
        connections = list(IntegrationConnection.objects.filter(tenant=tenant).order_by("provider"))
        received = dict(
            WebhookDelivery.objects.filter(tenant=tenant)
            .values("provider")
            .annotate(last=Max("received_at"))
            .values_list("provider", "last")
        )
    return [
        {
            "provider": c.provider,
            "external_id": c.external_id,
            "updated_at": c.updated_at,
            "last_webhook": received.get(c.provider),
            "last_call": last_calls.get(c.provider),
        }
        for c in connections
    ]


def effects_summary(tenant: Tenant) -> dict[str, Any]:
    """How many of the tenant's outside effects wait or failed, and the latest of them (a
    tenant admin retries a failed one on the effects page)."""
    from django.db.models import Count

    from effects.models import Effect

    with tenant_read_scope(tenant.pk):
        open_effects = Effect.objects.filter(
            tenant=tenant, state__in=[Effect.State.PENDING, Effect.State.FAILED]
        )
        counts = dict(open_effects.values_list("state").annotate(n=Count("id")).order_by())
        latest = list(
            open_effects.order_by("-updated_at").only(
                "id", "kind", "key", "state", "attempts", "last_error", "updated_at"
            )[:10]
        )
    return {
        "pending": counts.get(Effect.State.PENDING, 0),
        "failed": counts.get(Effect.State.FAILED, 0),
        "latest": latest,
    }


# The share of a budget past which the console warns.
BUDGET_WARNING_SHARE = 0.8


def _llm_budget(tenant: Tenant) -> dict[str, Any] | None:
    """Today's LLM tokens against the budget; None when Redis does not answer."""
    from integrations.llm.services import llm_budget_use

    try:
        spent, budget = llm_budget_use(tenant=tenant)
    except RedisError:
        return None
    share = spent / budget.tokens if budget.tokens else 0.0
    return {
        "spent": spent,
        "tokens": budget.tokens,
        "set_by": budget.set_by,
        "percent": round(100 * share),
        "warning": share >= BUDGET_WARNING_SHARE,
    }


@login_required
def overview(request: HttpRequest, slug: str) -> HttpResponse:
    access = tenant_for(request, slug)
    tenant = access.tenant
    telemetry = _telemetry(tenant.slug)
    topics = topic_rows(tenant.slug, (telemetry or {}).get("topics", {}))
    with tenant_read_scope(tenant.pk):
        keys = list(ApiKey.objects.filter(tenant=tenant).order_by("-created_at")[:5])
        active_keys = ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).count()
    limit = tenant.rate_limit_per_minute or settings.RATE_LIMIT_PER_MINUTE
    return render(
        request,
        "console/overview.html",
        {
            "access": access,
            "tenant": tenant,
            "tab": "overview",
            "steps": step_states(tenant),
            "topics": topics,
            "counted": counts_freshness(),
            "calls_counted": calls_freshness(last_call=(telemetry or {}).get("last_call")),
            "telemetry": telemetry,
            "rate_used": rate_limit_usage(tenant_slug=tenant.slug),
            "rate_limit": limit,
            "llm_budget": _llm_budget(tenant),
            "integrations": integrations_health(tenant, (telemetry or {}).get("last_calls", {})),
            "keys": keys,
            "active_keys": active_keys,
            "effects": effects_summary(tenant),
        },
    )
