"""Dedupe of provider deliveries: one row per (tenant, provider, delivery id).

The row is inserted in the same transaction as the delivery's outbox rows, so the mark and the
data it guards commit or vanish together: a retry after a failed attempt is accepted, a retry
after a committed one is a duplicate. Two concurrent attempts serialise on the unique index.
A delivery that becomes one event (Shopify, n8n, Clerk) is accepted by one statement that
claims and emits (delivery_event_accept); WhatsApp's, which also store messages, claim inside
their own transaction (delivery_claim).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from integrations.models import WebhookDelivery
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import (
    TenantEvent,
    outbox_params,
    outbox_register_sql,
    outbox_rows_sql,
)
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped, tenant_statement

_CLAIM = (
    f"INSERT INTO {WebhookDelivery._meta.db_table} (tenant_id, provider, delivery_id, received_at)"
    " VALUES (%s, %s, %s, now()) ON CONFLICT (tenant_id, provider, delivery_id) DO NOTHING"
    " RETURNING id"
)


def delivery_claim(*, tenant: Tenant, provider: str, delivery_id: str) -> bool:
    """Mark `delivery_id` of `provider` as accepted for `tenant`, in the caller's transaction.
    True the first time; False if an earlier attempt committed it (a duplicate)."""
    if not connection.in_atomic_block:
        raise RuntimeError("delivery_claim must run inside the transaction that queues the events")
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [tenant.pk, provider, delivery_id])
        return cursor.fetchone() is not None


# The claim and the event in one statement: the event's rows are written only if the claim
# inserted its row, and both commit together (data-modifying CTEs all run, once).
_FIRST = "EXISTS (SELECT FROM claim)"
_CLAIM_AND_EMIT = (
    f"WITH claim AS ({_CLAIM}), registered AS ({outbox_register_sql(_FIRST)}), "
    f"emitted AS ({outbox_rows_sql(_FIRST)} RETURNING 1) SELECT count(*) FROM claim"
)


def delivery_event_accept(
    *, tenant: Tenant, provider: str, delivery_id: str, event: TenantEvent
) -> Envelope | None:
    """Accept `delivery_id` of `provider` as `event` (smarteros.events.outbox.tenant_event), in
    one round trip (or in the caller's transaction); None if an earlier attempt committed it (a
    duplicate). Raises InvalidEvent (or EventTooLarge) before anything is written if the event
    is refused."""
    params = outbox_params([event], tenant_id=tenant.pk)
    [(claimed,)] = tenant_statement(
        tenant.pk, _CLAIM_AND_EMIT, [tenant.pk, provider, delivery_id, *params]
    )
    return event[1] if claimed else None


def deliveries_prune(*, older_than_days: int | None = None) -> int:
    """Forget delivery ids older than WEBHOOK_DEDUPE_DAYS (longer than any provider retries)."""
    days = older_than_days if older_than_days is not None else settings.WEBHOOK_DEDUPE_DAYS
    with dangerously_unscoped():
        deleted, _ = WebhookDelivery.objects.filter(
            received_at__lt=timezone.now() - timedelta(days=days)
        ).delete()
    return deleted
