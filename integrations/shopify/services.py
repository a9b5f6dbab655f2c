"""Shopify writes shared by the operations and the webhook endpoint."""

from __future__ import annotations

from typing import Any

from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit
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
    outbox_emit(
        topic=f"{tenant.slug}.shopify.webhooks",
        key=resource_id,
        tenant_id=tenant.pk,
        envelope=Envelope(
            type="shopify.webhook.received",
            source="integrations.shopify",
            tenant=tenant.slug,
            trace_id=trace_id,
            data={"topic": topic, "webhook_id": webhook_id, "payload": payload},
        ),
    )
    return True
