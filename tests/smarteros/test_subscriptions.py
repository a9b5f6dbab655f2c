"""Consumers subscribe to named tenant topics kept current from provisioning: a new tenant's first
event is handled within seconds, and deprovisioning deletes a tenant's topics only after every
consumer has left them (real broker, real consumer group, real Vault and Redis)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Producer
from django.utils import timezone

from smarteros.events import subscriptions
from smarteros.events.catalog import tenant_topics
from smarteros.events.consumers import GroupWorker, Registration
from smarteros.events.envelope import Envelope
from smarteros.infra.kafka import admin_client, client_config
from smarteros.infra.redis import get_redis
from tenants import provisioning
from tenants.models import Tenant
from tenants.provisioning import tenant_provision, tenants_deprovision_due
from tenants.scope import dangerously_unscoped
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
TOPIC = "n8n.automation.trigger"


def produce(slug: str, n: int) -> str:
    envelope = Envelope(
        type="tenant.provisioning.step",
        source="test",
        tenant=slug,
        data={"step": f"s{n}", "outcome": "ok"},
    )
    producer = Producer(client_config())
    producer.produce(f"{slug}.{TOPIC}", value=envelope.to_bytes())
    assert producer.flush(10) == 0
    return envelope.id


def new_tenant() -> Tenant:
    with dangerously_unscoped():
        return Tenant.objects.create(slug=f"sub{secrets.token_hex(3)}", name="Subscribed")


def on_broker(slug: str) -> set[str]:
    return {t for t in admin_client().list_topics(timeout=10).topics if t.startswith(f"{slug}.")}


@pytest.fixture
def worker(broker: Any) -> Any:
    handled: dict[str, float] = {}
    group = f"subs-{secrets.token_hex(3)}"
    worker = GroupWorker(
        group,
        [Registration(f"*.{TOPIC}", "*", group, lambda e: handled.setdefault(e.id, time.time()))],
        **FAST,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield SimpleNamespace(
        consumer=worker.consumer, subscription=worker.subscription, handled=handled, thread=thread
    )
    worker.stop()
    thread.join(30)


def test_a_new_tenants_first_event_is_handled_within_seconds(worker: Any, settings: Any) -> None:
    tenant = new_tenant()
    tenant_provision(tenant=tenant)
    provisioned = time.time()
    event_id = produce(tenant.slug, 1)
    wait_for(lambda: event_id in worker.handled, timeout=60)
    # At worst the change waits for the end of the consumer's re-subscription window.
    assert worker.handled[event_id] - provisioned < settings.SUBSCRIPTION_REFRESH_SECONDS + 10


def test_a_burst_of_provisionings_is_one_resubscription_per_window(
    worker: Any, settings: Any
) -> None:
    settings.SUBSCRIPTION_REFRESH_SECONDS = 8
    wait_for(lambda: worker.subscription.version >= 0, timeout=30)  # subscribed at start
    assert worker.subscription.resubscribes == 0
    started = time.monotonic()
    burst = []
    for _ in range(20):  # what provisioning does once a tenant's topics exist
        tenant = new_tenant()
        with dangerously_unscoped():
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ACTIVE)
        subscriptions.subscriptions_changed()
        burst.append(tenant.slug)
    lasted = time.monotonic() - started
    wanted = {f"{slug}.{TOPIC}" for slug in burst}
    wait_for(lambda: wanted <= set(worker.subscription.topics), timeout=60)
    # Twenty directory changes, one subscribe() for each window they fell in.
    assert worker.subscription.resubscribes <= 1 + int(lasted // 8)
    assert worker.subscription.resubscribes < len(burst)


def test_deprovisioning_deletes_topics_only_after_every_consumer_left_them(
    worker: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaving, staying = new_tenant(), new_tenant()
    for tenant in (leaving, staying):
        tenant_provision(tenant=tenant)
    first = produce(leaving.slug, 1)
    wait_for(lambda: first in worker.handled, timeout=30)
    with dangerously_unscoped():
        Tenant.objects.filter(pk=leaving.pk).update(
            status=Tenant.Status.DELETED, deleted_at=timezone.now() - timedelta(days=1)
        )
    settings.TENANT_DELETION_GRACE_DAYS = 0

    # A consumer that never acknowledges (stuck, or an old release): nothing is deleted.
    key = subscriptions._key("acks")
    stuck = json.dumps({"version": 0, "at": time.time()})
    get_redis().hset(key, "stuck-host:1/some-group", stuck)
    monkeypatch.setattr(provisioning, "CONSUMERS_LEAVE_SECONDS", 2.0)
    try:
        assert tenants_deprovision_due() == []
    finally:
        get_redis().hdel(key, "stuck-host:1/some-group")
    assert on_broker(leaving.slug) == {spec.name for spec in tenant_topics(leaving.slug)}
    # The live worker leaves the tenant it was told is leaving, once its re-subscription
    # window allows (the stuck consumer above is what held the deletion back).
    wait_for(
        lambda: (
            not [tp for tp in worker.consumer.assignment() if tp.topic.startswith(leaving.slug)]
            and leaving.slug not in " ".join(worker.subscription.topics)
        ),
        timeout=60,
    )

    assert tenants_deprovision_due() == [leaving.slug]
    assert on_broker(leaving.slug) == set()
    # The consumer lived through the deletion and still handles the other tenant's events.
    after = produce(staying.slug, 2)
    wait_for(lambda: after in worker.handled, timeout=30)
    assert worker.thread.is_alive()


def test_the_forwarding_group_reads_only_topics_with_a_trigger(broker: Any) -> None:
    from integrations.models import N8nTrigger
    from integrations.n8n.topics import FORWARD_GROUP
    from smarteros.events.consumers import registrations

    with_trigger, without = new_tenant(), new_tenant()
    slugs = {with_trigger.slug, without.slug}
    forward = GroupWorker(FORWARD_GROUP, [r for r in registrations() if r.group == FORWARD_GROUP])
    version = lambda: int(get_redis().get(subscriptions._key("version")) or 0)  # noqa: E731
    try:
        assert forward.topics(slugs) == []  # seven topics per tenant, none with work
        before = version()
        with dangerously_unscoped():  # as the admin or the operation would
            trigger = N8nTrigger.objects.create(
                tenant=with_trigger, topic="shopify.webhooks", webhook_path="orders"
            )
        assert version() > before  # the consumers are told once it commits
        assert forward.topics(slugs) == [f"{with_trigger.slug}.shopify.webhooks"]
        before = version()
        with dangerously_unscoped():
            trigger.delete()
        assert version() > before and forward.topics(slugs) == []
    finally:
        forward.consumer.close()


def test_tenant_topics_are_counted_where_published_not_read_by_the_counter(broker: Any) -> None:
    from smarteros.events.catalog import platform_topics
    from smarteros.events.outbox import relay_batch, tenant_event_emit
    from smarteros.events.tally import published_drain
    from telemetry.counter import counted_topics
    from tenants.scope import tenant_scope

    # The counter reads the platform's topics only, however many tenants there are.
    assert counted_topics({"a", "b"}) == [spec.name for spec in platform_topics()]
    tenant = new_tenant()
    tenant_provision(tenant=tenant)
    while relay_batch(flush_timeout=10):  # what provisioning itself queued
        pass
    published_drain()
    with tenant_scope(tenant.pk):
        for n in range(3):
            tenant_event_emit(
                tenant=tenant,
                topic="shopify.webhooks",
                event_type="shopify.webhook.received",
                data={"topic": "orders/create", "webhook_id": f"w{n}", "payload": {"n": n}},
                key="k",
                source="test",
                trace_id="0" * 32,
            )
    assert relay_batch(flush_timeout=10) == 3
    drained = published_drain()
    topic = f"{tenant.slug}.shopify.webhooks"
    assert (
        sum(n for (_, slug, name), n in drained.items() if (slug, name) == (tenant.slug, topic))
        == 3
    )
    assert not any(topic in counted_topics(set()) for _, _, topic in drained)
    assert published_drain() == {}  # drained once


def test_the_whatsapp_flows_read_only_connected_tenants_topics(broker: Any) -> None:
    from integrations.models import IntegrationConnection
    from smarteros.events.consumers import registrations

    connected, other = new_tenant(), new_tenant()
    slugs = {connected.slug, other.slug}
    bot = GroupWorker(
        "flow-whatsapp-bot", [r for r in registrations() if r.group == "flow-whatsapp-bot"]
    )
    try:
        assert bot.topics(slugs) == []
        with dangerously_unscoped():  # as the console's connect (or the admin) would
            connection = IntegrationConnection.objects.create(
                tenant=connected, provider="whatsapp", credentials_ciphertext="vault:v1:x"
            )
        assert bot.topics(slugs) == [f"{connected.slug}.whatsapp.inbound"]
        before = int(get_redis().get(subscriptions._key("version")) or 0)
        with dangerously_unscoped():  # disconnected: the group leaves the topic
            connection.delete()
        assert int(get_redis().get(subscriptions._key("version")) or 0) > before
        assert bot.topics(slugs) == []
    finally:
        bot.consumer.close()
