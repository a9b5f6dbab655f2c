"""The outbox and its relay: what is published is what was emitted, one relay publishes at a
time, a value that would corrupt the batch is refused, and old rows are pruned."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from smarteros.events.catalog import tenant_topics
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import (
    RELAY_LOCK,
    outbox_emit,
    outbox_emit_many,
    relay_batch,
    tenant_event_emit,
)
from smarteros.events.schemas import InvalidEvent
from smarteros.events.topics import topics_sync
from smarteros.models import OutboxEvent, ProcessedEvent
from smarteros.tasks import events_prune
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.smarteros.backbone import read_all, unsent

pytestmark = pytest.mark.django_db(transaction=True)


def webhook(tenant: Any, key: str, n: int) -> Envelope:
    with tenant_scope(tenant.pk):
        return tenant_event_emit(
            tenant=tenant,
            topic="shopify.webhooks",
            event_type="shopify.webhook.received",
            data={"topic": "orders/create", "webhook_id": f"w{n}", "payload": {"n": n, "é": "ü"}},
            key=key,
            source="test",
            trace_id="0" * 32,
        )


def test_events_go_out_byte_for_byte_with_key_and_headers(broker: Any, make_tenant: Any) -> None:
    acme = make_tenant("acme").tenant
    topics_sync(tenant_topics("acme"))
    keyed, unkeyed = webhook(acme, "order-1", 1), webhook(acme, "", 2)
    platform = Envelope(
        type="tenant.provisioning.step", source="test", data={"step": "s", "outcome": "ok"}
    )
    with dangerously_unscoped():
        outbox_emit(topic="tenant.provisioning", envelope=platform)  # no tenant, no key
    assert unsent() == 3
    assert relay_batch(flush_timeout=5) == 3
    assert unsent() == 0
    messages = {m.value(): m for m in read_all("acme.shopify.webhooks", 2)}
    for envelope, key in ((keyed, b"order-1"), (unkeyed, None)):
        message = messages[envelope.model_dump_json().encode()]
        assert message.key() == key
        assert dict(message.headers()) == {
            "event-type": b"shopify.webhook.received",
            "tenant": b"acme",
        }
    [provisioning] = read_all("tenant.provisioning", 1)
    assert provisioning.value() == platform.model_dump_json().encode()
    assert dict(provisioning.headers())["tenant"] == b""


def test_a_value_holding_the_column_separator_is_refused_and_nothing_is_written(
    make_tenant: Any,
) -> None:
    acme = make_tenant("acme").tenant
    good = Envelope(type="tenant.provisioning.step", source="t", data={"step": "a", "outcome": "b"})
    bad = Envelope(type="tenant.provisioning.step", source="t", data={"step": "a", "outcome": "b"})
    with tenant_scope(acme.pk), pytest.raises(InvalidEvent, match="x1e"):
        outbox_emit_many(
            [("tenant.provisioning", good, "k"), ("tenant.provisioning", bad, "a\x1eb")],
            tenant_id=acme.pk,
        )
    assert unsent() == 0


def test_one_relay_publishes_at_a_time(broker: Any, make_tenant: Any) -> None:
    acme = make_tenant("acme").tenant
    topics_sync(tenant_topics("acme"))
    webhook(acme, "order-1", 1)
    database = settings.DATABASES["default"]
    other_relay = psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        dbname=connection.settings_dict["NAME"],
        user=database["USER"],
        password=database["PASSWORD"],
    )
    try:
        other_relay.execute("BEGIN")
        other_relay.execute("SELECT pg_advisory_xact_lock(%s)", [RELAY_LOCK])
        assert relay_batch(flush_timeout=5) == 0  # another relay is publishing
        assert unsent() == 1
        other_relay.rollback()  # its batch is over
        assert relay_batch(flush_timeout=5) == 1
        assert unsent() == 0
    finally:
        other_relay.close()


def test_prune_drops_published_rows_and_marks_past_their_retention(make_tenant: Any) -> None:
    acme = make_tenant("acme").tenant
    for n in range(3):
        webhook(acme, f"order-{n}", n)
    now = timezone.now()
    with dangerously_unscoped():
        ids = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))
        OutboxEvent.objects.filter(id=ids[0]).update(sent_at=now - timedelta(hours=25))
        OutboxEvent.objects.filter(id=ids[1]).update(sent_at=now - timedelta(hours=1))
        # ids[2] is unsent: never pruned, however old.
        OutboxEvent.objects.filter(id=ids[2]).update(created_at=now - timedelta(days=30))
    ProcessedEvent.objects.create(group="g", event_id="00000000-0000-7000-8000-000000000001")
    ProcessedEvent.objects.create(group="g", event_id="00000000-0000-7000-8000-000000000002")
    ProcessedEvent.objects.filter(event_id="00000000-0000-7000-8000-000000000001").update(
        processed_at=now - timedelta(days=8)
    )
    assert events_prune() == {"outbox": 1, "processed": 1}
    with dangerously_unscoped():
        assert set(OutboxEvent.objects.values_list("id", flat=True)) == {ids[1], ids[2]}
    assert [str(p.event_id) for p in ProcessedEvent.objects.all()] == [
        "00000000-0000-7000-8000-000000000002"
    ]
