"""The relay recovers from a producer that failed for good (found by the soak: after the broker
came back without its producer state, every publish raised a fatal error and the relay retried
with the same dead producer forever). The broker comes back as the local stack brings it back:
restored from a backup, which moves it past the producer ids it had handed out (see
smarteros/events/producer_ids.py), so the relay's next write is refused loudly, not dropped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from smarteros.events.backup import topics_backup, topics_restore
from smarteros.events.catalog import tenant_topics
from smarteros.events.outbox import relay_batch
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import forget_producers
from tests.processes import start_kafka_broker
from tests.smarteros.backbone import read_all, unsent
from tests.smarteros.test_relay import webhook

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_relay_publishes_again_after_its_producer_failed_for_good(
    broker: Any, make_tenant: Any, tmp_path: Path
) -> None:
    acme = make_tenant("acme").tenant
    topic = "acme.shopify.webhooks"
    topics_sync(tenant_topics("acme"))
    first = [webhook(acme, f"order-{n}", n) for n in range(30)]
    assert relay_batch(flush_timeout=5) == 30

    topics_backup(tmp_path / "backup")
    broker.stop()
    restarted = start_kafka_broker(broker.port)  # empty, as a broker kept in memory restarts
    try:
        topics_restore(tmp_path / "backup", workers=1)
        later = webhook(acme, "order-later", 99)
        deadline = time.monotonic() + 60
        while unsent() and time.monotonic() < deadline:
            try:
                relay_batch(flush_timeout=3)
            except Exception:
                time.sleep(0.5)  # the relay's loop waits and tries again
        assert unsent() == 0
        values = [m.value() for m in read_all(topic, 31)]
        assert later.to_bytes() in values
        assert {e.to_bytes() for e in first} <= set(values)
    finally:
        forget_producers()
        restarted.stop()
