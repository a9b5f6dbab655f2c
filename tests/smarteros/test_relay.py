"""The relay against a real broker of the test's own: an event the broker refuses is set aside
with its reason while the rest flow on, retried from the admin; sizes are bounded at emit; and
concurrent writers of one key reach the topic in commit order."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from smarteros.events.catalog import MAX_MESSAGE_BYTES, tenant_topics
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit, relay_batch, tenant_event_emit
from smarteros.events.schemas import EventTooLarge
from smarteros.events.topics import topic_configs, topics_sync
from smarteros.infra.kafka import forget_producers
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.smarteros.backbone import read_all, unsent

pytestmark = pytest.mark.django_db(transaction=True)


def webhook(tenant: Any, key: str, n: int, filler: str = "") -> Envelope:
    with tenant_scope(tenant.pk):
        return tenant_event_emit(
            tenant=tenant,
            topic="shopify.webhooks",
            event_type="shopify.webhook.received",
            data={"topic": "orders/create", "webhook_id": f"w{n}", "payload": {"f": filler}},
            key=key,
            source="test",
            trace_id="0" * 32,
        )


def set_aside() -> dict[str, str]:
    with dangerously_unscoped():
        rows = OutboxEvent.objects.filter(sent_at__isnull=True, failed_at__isnull=False)
        return {row.topic: row.failure_reason for row in rows}


def retry_from_admin(client: Client, topic: str) -> None:
    with dangerously_unscoped():
        pk = OutboxEvent.objects.get(topic=topic, sent_at__isnull=True).pk
    response = client.post(
        "/admin/smarteros/outboxevent/",
        {"action": "retry", "_selected_action": [pk]},
        follow=True,
    )
    assert "back in line" in response.content.decode()


def test_an_event_the_broker_refuses_is_set_aside_and_the_rest_flow_on(
    broker: Any, make_tenant: Any, settings: Any
) -> None:
    acme = make_tenant("acme").tenant
    topics_sync(tenant_topics("acme"))
    topic = "acme.shopify.webhooks"
    assert topic_configs([topic])[topic]["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
    # A cluster that accepts less than the catalog says. Tansu enforces no topic limit, so the
    # client's own check (the same MSG_SIZE_TOO_LARGE a broker answers) stands for it.
    settings.KAFKA_CLIENT_CONFIG = "message.max.bytes=100000"
    forget_producers()
    first = webhook(acme, "order-1", 1)
    big = webhook(acme, "order-2", 2, filler="x" * 300_000)
    last = webhook(acme, "order-3", 3)
    with dangerously_unscoped():  # a topic name no broker accepts
        outbox_emit(
            topic="acme.no such topic!",
            envelope=Envelope(
                type="tenant.provisioning.step", source="t", data={"step": "s", "outcome": "ok"}
            ),
        )

    assert relay_batch(flush_timeout=5) == 2  # the ordinary ones go out at once
    assert {m.value() for m in read_all(topic, 2)} == {first.to_bytes(), last.to_bytes()}
    reasons = set_aside()
    assert reasons[topic].startswith("MSG_SIZE_TOO_LARGE")
    assert reasons["acme.no such topic!"].split(":")[0] in ("TOPIC_EXCEPTION", "_UNKNOWN_TOPIC")
    assert unsent() == 2 and relay_batch(flush_timeout=5) == 0  # never retried on their own

    ready = Client().get("/readyz").json()
    assert ready["status"] == "degraded"
    assert ready["outbox"]["set_aside"] == 2 and "set aside" in ready["outbox"]["detail"]

    admin = get_user_model().objects.create_superuser("ops", password="pw-ops-1")
    client = Client()
    client.force_login(admin)
    assert "no such topic" in client.get("/admin/smarteros/outboxevent/?state=set_aside").text
    retry_from_admin(client, topic)  # the cause is still there: refused again, with the reason
    assert relay_batch(flush_timeout=5) == 0
    assert set_aside()[topic].startswith("MSG_SIZE_TOO_LARGE")

    settings.KAFKA_CLIENT_CONFIG = ""  # the limit is raised: the retry goes through
    forget_producers()
    retry_from_admin(client, topic)
    assert relay_batch(flush_timeout=5) == 1
    assert big.to_bytes() in {m.value() for m in read_all(topic, 3)}
    assert list(set_aside()) == ["acme.no such topic!"]


def test_an_event_larger_than_its_topic_accepts_is_refused_at_emit(make_tenant: Any) -> None:
    acme = make_tenant("acme").tenant
    with pytest.raises(EventTooLarge) as refused:
        webhook(acme, "k", 1, filler="é" * (MAX_MESSAGE_BYTES // 2))
    assert refused.value.topic == "acme.shopify.webhooks"
    assert refused.value.size > refused.value.limit == MAX_MESSAGE_BYTES
    assert unsent() == 0
    webhook(acme, "k", 2, filler="x" * (MAX_MESSAGE_BYTES // 2))  # under the limit: accepted
    assert unsent() == 1


def test_concurrent_writers_of_one_key_reach_the_topic_in_commit_order(
    broker: Any, make_tenant: Any
) -> None:
    acme = make_tenant("acme").tenant
    topics_sync(tenant_topics("acme"))
    emitted, release, done = threading.Event(), threading.Event(), threading.Event()
    slow: list[Envelope] = []

    def slow_writer() -> None:
        try:
            with tenant_scope(acme.pk):
                slow.append(webhook(acme, "product-1", 1))  # the lower id, committed last
                emitted.set()
                release.wait(30)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=slow_writer, daemon=True).start()
    assert emitted.wait(30)
    fast = webhook(acme, "product-1", 2)  # a later id, committed first
    release.set()
    assert done.wait(30)
    assert relay_batch(flush_timeout=5) == 2  # both committed: one batch
    values = [m.value() for m in read_all("acme.shopify.webhooks", 2)]
    assert values == [fast.to_bytes(), slow[0].to_bytes()]
    with dangerously_unscoped():
        ids = {str(k): v for k, v in OutboxEvent.objects.values_list("event_id", "id")}
    assert ids[slow[0].id] < ids[fast.id]  # id order is not the order published


def test_readyz_says_degraded_while_an_event_waits_too_long(
    make_tenant: Any, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    acme = make_tenant("acme").tenant
    webhook(acme, "k", 1)
    ready = Client().get("/readyz").json()
    assert ready["outbox"]["status"] == "ok" and ready["outbox"]["unsent"] == 1
    with dangerously_unscoped():  # the relay has been away for ten minutes
        OutboxEvent.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    outbox = response.json()["outbox"]
    assert outbox["oldest_unsent_age_seconds"] >= 600 and "waits for" in outbox["detail"]


def test_topics_sync_gives_existing_topics_the_catalogs_message_limit(broker: Any) -> None:
    from confluent_kafka.admin import NewTopic

    from smarteros.infra.kafka import admin_client

    name = "acme.shopify.products"
    admin = admin_client()
    admin.create_topics([NewTopic(name, 3, 1, config={"max.message.bytes": "5000"})])[name].result(
        10
    )
    changes = {c.topic: c for c in topics_sync(tenant_topics("acme"))}
    assert changes[name].action == "updated", changes[name]
    assert topic_configs([name])[name]["max.message.bytes"] == str(MAX_MESSAGE_BYTES)


def test_a_transaction_whose_events_were_deleted_holds_no_place_in_line(
    broker: Any, make_tenant: Any
) -> None:
    acme = make_tenant("acme").tenant
    topics_sync(tenant_topics("acme"))
    webhook(acme, "k", 1)
    with dangerously_unscoped():
        OutboxEvent.objects.all().delete()  # by hand, before the relay saw it
    kept = webhook(acme, "k", 2)
    assert relay_batch(limit=1, flush_timeout=5) + relay_batch(limit=1, flush_timeout=5) == 1
    assert [m.value() for m in read_all("acme.shopify.webhooks", 1)] == [kept.to_bytes()]
