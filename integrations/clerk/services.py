"""Clerk's events in: each verified delivery once, on the tenant's clerk.auth.events topic."""

from __future__ import annotations

from integrations.clerk.schemas import ClerkDelivery
from integrations.deliveries import delivery_event_accept
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import tenant_event
from tenants.models import Tenant


def clerk_event_key(delivery: ClerkDelivery) -> str:
    """Events of one user stay in order: keyed by the user (a session's user_id, a user's id),
    else the object's id, else the delivery."""
    data = delivery.event.data
    for name in ("user_id", "id"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return delivery.svix_id


def clerk_webhook_accept(
    *, tenant: Tenant, delivery: ClerkDelivery, trace_id: str
) -> Envelope | None:
    """Publish a verified Clerk event on `{tenant}.clerk.auth.events` through the outbox, once
    per svix-id (the dedupe row commits with the event); None if it is a repeat."""
    event = delivery.event
    queued = tenant_event(
        tenant=tenant,
        topic="clerk.auth.events",
        event_type="clerk.webhook.received",
        data={
            "type": event.type,
            "svix_id": delivery.svix_id,
            "instance_id": event.instance_id or "",
            "timestamp": event.timestamp,
            "data": event.data,
        },
        key=clerk_event_key(delivery),
        source="integrations.clerk",
        trace_id=trace_id,
    )
    return delivery_event_accept(
        tenant=tenant, provider="clerk", delivery_id=delivery.svix_id, event=queued
    )
