"""Dedupe of provider deliveries: one row per (tenant, provider, delivery id).

The row is inserted in the same transaction as the delivery's outbox rows, so the mark and the
data it guards commit or vanish together: a retry after a failed attempt is accepted, a retry
after a committed one is a duplicate. Two concurrent attempts serialise on the unique index.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from integrations.models import WebhookDelivery
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped

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


def deliveries_prune(*, older_than_days: int | None = None) -> int:
    """Forget delivery ids older than WEBHOOK_DEDUPE_DAYS (longer than any provider retries)."""
    days = older_than_days if older_than_days is not None else settings.WEBHOOK_DEDUPE_DAYS
    with dangerously_unscoped():
        deleted, _ = WebhookDelivery.objects.filter(
            received_at__lt=timezone.now() - timedelta(days=days)
        ).delete()
    return deleted
