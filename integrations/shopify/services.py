"""Shopify writes shared by the operations and the webhook endpoint."""

from __future__ import annotations

from typing import Any

from integrations.deliveries import delivery_event_accept
from smarteros.events.outbox import tenant_event
from tenants.models import Tenant


def shopify_webhook_accept(
    *, tenant: Tenant, topic: str, webhook_id: str, payload: dict[str, Any], trace_id: str
) -> bool:
    """Queue a verified delivery for the tenant's shopify.webhooks topic; False if it is a repeat
    (Shopify retries a delivery with the same webhook id). The dedupe row and the outbox row
    commit together, so a failed attempt's retry is accepted."""
    resource_id = str(payload.get("admin_graphql_api_id") or payload.get("id") or webhook_id)
    event = tenant_event(
        tenant=tenant,
        topic="shopify.webhooks",
        event_type="shopify.webhook.received",
        data={"topic": topic, "webhook_id": webhook_id, "payload": payload},
        key=resource_id,
        source="integrations.shopify",
        trace_id=trace_id,
    )
    return (
        delivery_event_accept(
            tenant=tenant, provider="shopify", delivery_id=webhook_id, event=event
        )
        is not None
    )
