"""Shopify writes shared by the operations and the webhook endpoint."""

from __future__ import annotations

from typing import Any

from smarteros.events.outbox import tenant_event_emit
from smarteros.infra.redis import get_redis
from tenants.models import Tenant

WEBHOOK_DEDUPE_SECONDS = 7 * 86400


def shopify_webhook_accept(
    *, tenant: Tenant, topic: str, webhook_id: str, payload: dict[str, Any], trace_id: str
) -> bool:
    """Queue a delivery for the tenant's shopify.webhooks topic; False if it is a repeat
    (Shopify retries deliveries, always with the same webhook id)."""
    first = get_redis().set(
        f"smarteros:shopify:webhook:{tenant.slug}:{webhook_id}",
        1,
        nx=True,
        ex=WEBHOOK_DEDUPE_SECONDS,
    )
    if not first:
        return False
    resource_id = str(payload.get("admin_graphql_api_id") or payload.get("id") or webhook_id)
    tenant_event_emit(
        tenant=tenant,
        topic="shopify.webhooks",
        event_type="shopify.webhook.received",
        data={"topic": topic, "webhook_id": webhook_id, "payload": payload},
        key=resource_id,
        source="integrations.shopify",
        trace_id=trace_id,
    )
    return True
