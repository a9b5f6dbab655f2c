"""A broker that comes back from a backup has lost what it acknowledged after the backup was
taken: the restore command republishes those events from the outbox, so every event emitted is
on its topic again (consumers skip the ids they handled)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from smarteros.events import outbox
from smarteros.events.catalog import tenant_topics
from smarteros.events.generations_restore import generations_restore
from smarteros.events.outbox import relay_batch, tenant_event_emit
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import forget_producers
from tenants.scope import tenant_scope
from tests.processes import kafka_broker
from tests.smarteros.backbone import read_all, unsent

pytestmark = pytest.mark.django_db(transaction=True)


def emit(tenant: Any, n: int) -> str:
    with tenant_scope(tenant.pk):
        envelope = tenant_event_emit(
            tenant=tenant,
            topic="shopify.webhooks",
            event_type="shopify.webhook.received",
            data={"topic": "orders/create", "webhook_id": f"w{n}", "payload": {"n": n}},
            key=f"order-{n}",
            source="test",
            trace_id="0" * 32,
        )
    return envelope.id


def test_events_sent_after_the_backup_are_republished_into_the_restored_broker(
    broker: Any, make_tenant: Any, settings: Any, tmp_path: Path
) -> None:
    acme = make_tenant("acme").tenant
    topics_sync(tenant_topics("acme"))
    root = tmp_path / "kafka-backup"
    before = [emit(acme, n) for n in range(3)]
    assert relay_batch(flush_timeout=10) == 3
    generations_restore(root)  # no backup yet: this broker's topics become generation 1
    after = [emit(acme, n) for n in range(3, 5)]
    assert relay_batch(flush_timeout=10) == 2 and unsent() == 0

    with kafka_broker() as fresh:  # the broker restarted empty
        settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{fresh.port}"
        forget_producers()
        outbox._known_topics.clear()
        out = StringIO()
        call_command("topics", "generation-restore", str(root), stdout=out)
        assert "restored and verified 3 records" in out.getvalue()
        assert unsent() >= 2, out.getvalue()  # at least what went out after the backup
        while relay_batch(flush_timeout=10):
            pass
        on_topic = {json.loads(m.value())["id"] for m in read_all("acme.shopify.webhooks", 5)}
        assert on_topic == set(before + after)
        forget_producers()
