"""The relay recovers from a producer that failed for good (found by the soak: after the broker
came back without its producer state and another producer was given the relay's producer id,
every publish raised a fatal error and the relay retried with the same dead producer forever)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Producer

from smarteros.events.catalog import tenant_topics
from smarteros.events.outbox import relay_batch
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import forget_producers
from tests.processes import start_kafka_broker
from tests.smarteros.backbone import read_all, unsent
from tests.smarteros.test_relay import webhook

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.xfail(
    strict=False,
    reason="sometimes the restarted local broker (Tansu, memory storage, no producer state) "
    "acknowledges the relay's first write under a producer id it handed out again, then the "
    "write is not on the topic: the same loss as the soak's telemetry gap (docs/soak.md, Open)",
)
def test_the_relay_publishes_again_after_its_producer_failed_for_good(
    broker: Any, make_tenant: Any, settings: Any
) -> None:
    acme = make_tenant("acme").tenant
    topic = "acme.shopify.webhooks"
    topics_sync(tenant_topics("acme"))
    first = [webhook(acme, f"order-{n}", n) for n in range(30)]
    assert relay_batch(flush_timeout=5) == 30

    broker.stop()
    restarted = start_kafka_broker(broker.port)  # empty, as a broker kept in memory restarts
    try:
        topics_sync(tenant_topics("acme"))
        # What a restore does first: another idempotent producer writes, and the fresh broker
        # hands it the producer id the relay's producer still uses.
        replay = Producer(
            {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "enable.idempotence": True}
        )
        for envelope in first:
            replay.produce(topic, key=envelope.id.encode(), value=envelope.to_bytes())
        assert replay.flush(10) == 0
        later = webhook(acme, "order-later", 99)
        deadline = time.monotonic() + 60
        while unsent() and time.monotonic() < deadline:
            try:
                relay_batch(flush_timeout=3)
            except Exception:
                time.sleep(0.5)  # the relay's loop waits and tries again
        assert unsent() == 0
        assert later.to_bytes() in {m.value() for m in read_all(topic, 31)}
    finally:
        forget_producers()
        restarted.stop()
