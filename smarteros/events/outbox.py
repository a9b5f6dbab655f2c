"""Transactional outbox: events are rows written in the caller's transaction, published later.

A broker outage therefore delays events and never loses them: the row stays until the relay
has had the broker acknowledge it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from smarteros.events.envelope import Envelope
from smarteros.events.schemas import InvalidEvent, validate_event_data
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


# Separates the values of one column in the text parameters of outbox_emit_many: a control
# character that JSON text never holds raw and that the other values are checked not to hold.
_SEP = "\x1e"
_INSERT = (
    f"INSERT INTO {OutboxEvent._meta.db_table} "
    "(event_id, tenant_id, tenant, topic, key, event_type, payload, created_at) "
    "SELECT e::uuid, %s, coalesce(tn, ''), t, coalesce(k, ''), et, p, now() FROM unnest("
    + ", ".join(["string_to_array(%s, E'\\x1e')"] * 6)
    + ") AS r(e, tn, t, k, et, p)"
)


def outbox_emit_many(events: list[tuple[str, Envelope, str]], *, tenant_id: int | None) -> None:
    """Queue many (topic, envelope, key) events of one tenant with one INSERT, in the current
    transaction. Raises InvalidEvent if an event's data does not match its type's schema.

    Each column travels as one text parameter that PostgreSQL splits itself: far cheaper than
    binding thousands of parameters or expanding a JSON document."""
    ids, tenants, topics, keys, types, payloads = [], [], [], [], [], []
    for topic, envelope, key in events:
        validate_event_data(envelope.type, envelope.data)
        ids.append(envelope.id)
        tenants.append(envelope.tenant or "")
        topics.append(topic)
        keys.append(key)
        types.append(envelope.type)
        payloads.append(envelope.model_dump_json())
    columns = [_SEP.join(column) for column in (ids, tenants, topics, keys, types, payloads)]
    # A separator inside a value would shift the columns; JSON payloads cannot hold one raw.
    if any(column.count(_SEP) != len(events) - 1 for column in columns[:5]):
        raise InvalidEvent("an event id, tenant, topic, key or type holds the character \\x1e")
    from tenants.scope import scoped_connection

    with scoped_connection().cursor() as cursor:
        cursor.execute(_INSERT, [tenant_id, *columns])


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


# pg_try_advisory_xact_lock key held by the relay publishing a batch ("outbox" in ASCII).
RELAY_LOCK = 0x6F7574626F78


def relay_batch(*, limit: int = 2000, flush_timeout: float = 30.0) -> int:
    """Publish up to `limit` unsent events in id order; returns how many were sent.

    Several relays may run: one publishes a batch at a time (a transaction-level advisory lock),
    so batches never overtake each other and order per key holds; the others find the lock taken
    and return 0. Rows are marked sent only after the broker acknowledged every message of the
    batch. Payloads go out byte for byte as the emitter serialised them.
    """
    from tenants.scope import dangerously_unscoped

    table = OutboxEvent._meta.db_table
    with dangerously_unscoped() as platform, platform.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [RELAY_LOCK])
        if not cursor.fetchone()[0]:  # type: ignore[index]
            return 0
        # Losing the marks of the last batches in a database crash only republishes them, and
        # consumers skip event ids they have handled: the commit need not wait for the disk.
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            f"SELECT id, topic, key, event_type, payload, tenant FROM {table} "
            "WHERE sent_at IS NULL ORDER BY id LIMIT %s",
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

        for n, (_, topic, key, event_type, payload, tenant) in enumerate(rows):
            producer.produce(
                topic,
                key=key.encode() if key else None,
                value=payload.encode(),
                headers=[("event-type", event_type.encode()), ("tenant", tenant.encode())],
                on_delivery=on_delivery,
            )
            if n % 1000 == 999:
                producer.poll(0)  # serve delivery reports now and then; flush() serves the rest
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
            f"UPDATE {table} SET sent_at = now() "
            "WHERE id = ANY(string_to_array(%s, ',')::bigint[])",
            [",".join(str(row[0]) for row in rows)],
        )
        return len(rows)


def outbox_prune(*, older_than: timedelta | None = None) -> int:
    """Delete rows published longer ago than `older_than` (OUTBOX_SENT_RETENTION_HOURS)."""
    from django.conf import settings

    from tenants.scope import dangerously_unscoped

    age = older_than or timedelta(hours=settings.OUTBOX_SENT_RETENTION_HOURS)
    with dangerously_unscoped():
        deleted, _ = OutboxEvent.objects.filter(
            sent_at__isnull=False, sent_at__lt=timezone.now() - age
        ).delete()
    return deleted


def _connect() -> None:
    """Open the producer's connection and learn the broker's topics before the first event
    arrives, so that event does not wait for them."""
    try:
        metadata = get_producer().list_topics(timeout=10)
    except Exception as exc:
        log.warning("outbox relay: broker not reachable yet (%s)", exc)
        return
    _known_topics.update(metadata.topics)


def run_relay(*, stop: Callable[[], bool] = lambda: False, idle_sleep: float = 0.05) -> None:
    """Publish forever, backing off while the broker is down. Pruning is the events_prune task's."""
    _connect()
    backoff = 0.5
    while not stop():
        try:
            sent = relay_batch(limit=10_000)
            backoff = 0.5
        except Exception as exc:
            log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        if not sent:
            time.sleep(idle_sleep)
