"""Transactional outbox: events are rows written in the caller's transaction, published later.

A broker outage therefore delays events and never loses them: the row stays until the relay
has had the broker acknowledge it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

from smarteros.events.envelope import Envelope
from smarteros.events.schemas import validate_event_data
from smarteros.infra.kafka import get_producer
from smarteros.models import OutboxEvent

if TYPE_CHECKING:
    from tenants.models import Tenant

log = logging.getLogger(__name__)


def outbox_emit(
    *, topic: str, envelope: Envelope, key: str = "", tenant_id: int | None = None
) -> None:
    """Queue `envelope` for `topic` in the current transaction (commits with the state change).
    Raises InvalidEvent if its data does not match its type's schema."""
    outbox_emit_many([(topic, envelope, key)], tenant_id=tenant_id)


def tenant_event_emit(
    *,
    tenant: Tenant,
    topic: str,
    event_type: str,
    data: dict[str, Any],
    key: str,
    source: str,
    trace_id: str,
) -> Envelope:
    """Queue an event of `tenant` for its own `{slug}.{topic}` topic, in the current transaction."""
    envelope = Envelope(
        type=event_type, source=source, tenant=tenant.slug, trace_id=trace_id, data=data
    )
    outbox_emit(topic=f"{tenant.slug}.{topic}", envelope=envelope, key=key, tenant_id=tenant.pk)
    return envelope


def outbox_emit_many(events: list[tuple[str, Envelope, str]], *, tenant_id: int | None) -> None:
    """Queue many (topic, envelope, key) events of one tenant with one INSERT, in the current
    transaction. The rows travel as one JSON document, which PostgreSQL expands itself: much
    cheaper than binding thousands of parameters."""
    rows = []
    for topic, envelope, key in events:
        validate_event_data(envelope.type, envelope.data)
        rows.append(
            {
                "event_id": envelope.id,
                "tenant_id": tenant_id,
                "topic": topic,
                "key": key,
                "event_type": envelope.type,
                "payload": envelope.model_dump(mode="json"),
            }
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {OutboxEvent._meta.db_table} (event_id, tenant_id, topic, key, event_type, payload, created_at) "
            "SELECT event_id, tenant_id, topic, key, event_type, payload, now() "
            "FROM jsonb_to_recordset(%s::jsonb) AS r(event_id uuid, tenant_id bigint, topic text, key text, "
            "event_type text, payload jsonb)",
            [json.dumps(rows, separators=(",", ":"))],
        )


_known_topics: set[str] = set()


def _ensure_topics(names: set[str]) -> None:
    """Create catalog topics the batch needs but the broker lacks (a tenant whose provisioning
    has not run yet), with their catalog configs rather than the broker's defaults."""
    from smarteros.events.catalog import spec_for
    from smarteros.events.topics import topics_sync
    from smarteros.infra.kafka import admin_client

    missing = names - _known_topics
    if not missing:
        return
    existing = set(admin_client().list_topics(timeout=10).topics)
    specs = [spec for name in missing - existing if (spec := spec_for(name)) is not None]
    if specs:
        topics_sync(specs)
    _known_topics.update(existing | {spec.name for spec in specs})


def relay_batch(*, limit: int = 2000, flush_timeout: float = 30.0) -> int:
    """Publish up to `limit` unsent events in id order; returns how many were sent.

    Rows are locked (SKIP LOCKED) so several relays can run; they are marked sent only after the
    broker acknowledged every message of the batch. Payloads go out as PostgreSQL rendered them,
    without a decode and re-encode in Python.
    """
    from tenants.scope import dangerously_unscoped

    table = OutboxEvent._meta.db_table
    with dangerously_unscoped(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, topic, key, event_type, payload::text, coalesce(payload->>'tenant', '') FROM {table} "
            "WHERE sent_at IS NULL "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            [limit],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        _ensure_topics({row[1] for row in rows})
        producer = get_producer()
        failures: list[str] = []

        def on_delivery(err: object, msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        for _, topic, key, event_type, payload, tenant in rows:
            producer.produce(
                topic,
                key=key.encode() if key else None,
                value=payload.encode(),
                headers=[("event-type", event_type.encode()), ("tenant", tenant.encode())],
                on_delivery=on_delivery,
            )
            producer.poll(0)
        remaining = producer.flush(flush_timeout)
        if remaining or failures:
            # A broker that came back empty knows neither our topics nor our producer id:
            # forget both so the next attempt recreates them.
            _known_topics.clear()
            get_producer.cache_clear()
            # Rolling back releases the locks; nothing is marked, so the next attempt resends
            # (the idempotent producer and the consumers' processed-events table keep effects single).
            raise RuntimeError(f"broker did not acknowledge the batch: {failures[:3] or remaining}")
        cursor.execute(
            f"UPDATE {table} SET sent_at = now() WHERE id = ANY(%s)", [[row[0] for row in rows]]
        )
        return len(rows)


def outbox_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        deleted, _ = OutboxEvent.objects.filter(
            sent_at__isnull=False, sent_at__lt=timezone.now() - older_than
        ).delete()
    return deleted


def run_relay(*, stop: Callable[[], bool] = lambda: False, idle_sleep: float = 0.05) -> None:
    """Publish forever: back off while the broker is down, prune sent rows now and then."""
    backoff = 0.5
    last_prune = 0.0
    while not stop():
        try:
            sent = relay_batch(limit=10_000)
            backoff = 0.5
        except Exception as exc:
            log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        if time.monotonic() - last_prune > 3600:
            outbox_prune()
            last_prune = time.monotonic()
        if not sent:
            time.sleep(idle_sleep)
