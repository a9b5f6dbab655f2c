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

from django.utils import timezone

from smarteros.events.envelope import Envelope
from smarteros.events.schemas import validate_event_data
from smarteros.infra.kafka import get_producer
from smarteros.models import OutboxEvent

log = logging.getLogger(__name__)


def outbox_emit(
    *, topic: str, envelope: Envelope, key: str = "", tenant_id: int | None = None
) -> None:
    """Queue `envelope` for `topic` in the current transaction (commits with the state change).
    Raises InvalidEvent if its data does not match its type's schema."""
    validate_event_data(envelope.type, envelope.data)
    OutboxEvent.objects.create(
        event_id=envelope.id,
        tenant_id=tenant_id,
        topic=topic,
        key=key,
        event_type=envelope.type,
        payload=envelope.model_dump(mode="json"),
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


def relay_batch(*, limit: int = 1000, flush_timeout: float = 30.0) -> int:
    """Publish up to `limit` unsent events in id order; returns how many were sent.

    Rows are locked (SKIP LOCKED) so several relays can run; they are marked sent only after the
    broker acknowledged every message of the batch.
    """
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        rows = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True)
            .order_by("id")[:limit]
        )
        if not rows:
            return 0
        _ensure_topics({row.topic for row in rows})
        producer = get_producer()
        failures: list[str] = []

        def on_delivery(err: object, msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        for row in rows:
            producer.produce(
                row.topic,
                key=row.key.encode() if row.key else None,
                value=json.dumps(row.payload, separators=(",", ":")).encode(),
                headers=[("event-type", row.event_type.encode())],
                on_delivery=on_delivery,
            )
            producer.poll(0)
        remaining = producer.flush(flush_timeout)
        if remaining or failures:
            # A broker that came back empty knows neither our topics nor our producer id:
            # forget both so the next attempt recreates them.
            _known_topics.clear()
            get_producer.cache_clear()
            # Roll back the lock; nothing is marked, so the next attempt resends (idempotent
            # producer and consumers' processed-events table keep effects single).
            raise RuntimeError(f"broker did not acknowledge the batch: {failures[:3] or remaining}")
        OutboxEvent.objects.filter(id__in=[r.id for r in rows]).update(sent_at=timezone.now())
        return len(rows)


def outbox_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        deleted, _ = OutboxEvent.objects.filter(
            sent_at__isnull=False, sent_at__lt=timezone.now() - older_than
        ).delete()
    return deleted


def run_relay(*, stop: Callable[[], bool] = lambda: False, idle_sleep: float = 0.2) -> None:
    """Publish forever: back off while the broker is down, prune sent rows now and then."""
    backoff = 0.5
    last_prune = 0.0
    while not stop():
        try:
            sent = relay_batch()
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
