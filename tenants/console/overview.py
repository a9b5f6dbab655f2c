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

from smarteros.events.catalog import tenant_topics
from telemetry.queries import TelemetryUnavailable, TenantQuery, reader
from tenants.console.access import tenant_for
from tenants.console.steps import step_states
from tenants.models import ApiKey, Tenant
from tenants.ratelimit import rate_limit_usage
from tenants.scope import tenant_read_scope

DAY = 86400
PROVIDERS = ("shopify", "whatsapp", "n8n")


def _telemetry(slug: str) -> dict[str, Any] | None:
    """Topic counts, per-operation figures, recent errors and each provider's last call, over
    one ClickHouse connection; None when the store is unavailable."""
    try:
        with reader() as client:
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
            providers = (
                TenantQuery([slug], 30 * DAY)
                .where("service IN %(providers)s", providers=PROVIDERS)
                .run("service, max(time), argMax(status, time)", group_by="service", client=client)
            )
    except TelemetryUnavailable:
        return None
    return {
        "topics": {name: int(count) for name, count in topics},
        "operations": [
            {"operation": o, "calls": int(c), "errors": int(e), "p95_ms": round(float(p), 1)}
            for o, c, e, p in operations
        ],
        "calls": sum(int(c) for _, c, _, _ in operations),
        "errors": sum(int(e) for _, _, e, _ in operations),
        "recent_errors": [
            {"time": t, "operation": o, "status": s, "error_type": e} for t, o, s, e in errors
        ],
        "last_calls": {service: (last, status) for service, last, status in providers},
    }


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
    """How many of the tenant's outside effects wait or failed, and the latest of them (an
    operator retries a failed one in the admin)."""
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


def counts_freshness() -> dict[str, Any]:
    """How current the topic counts are, from the topic counter's own reports (as /readyz reads
    them): caught up as of its last report, or how far behind; `running` False if no member
    reports (counts then stop where it stopped)."""
    from smarteros.events.progress import consumer_groups_status
    from telemetry.counter import GROUP

    try:
        status = next((s for s in consumer_groups_status() if s.group == GROUP), None)
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
    counts = (telemetry or {}).get("topics", {})
    topics = [
        {
            "name": spec.name,
            "description": spec.description,
            "dead_letter": spec.name.endswith(".dlq"),
            "messages": counts.get(spec.name),
        }
        for spec in tenant_topics(tenant.slug)
    ]
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
