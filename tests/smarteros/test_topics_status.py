"""`manage.py topics status` on the running broker: a tenant topic whose partitions, retention or
cleanup policy differ from the catalog is reported as drifted, with what differs.

Runs against the shared broker of KAFKA_BOOTSTRAP_SERVERS under a tenant prefix unique to the test,
and deletes only the topics it created."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic
from django.core.management import call_command

from smarteros.events.catalog import DAY_MS, spec_for
from smarteros.infra.kafka import admin_client


@pytest.fixture
def drifted_tenant() -> Iterator[str]:
    slug = f"drift{secrets.token_hex(4)}"
    inventory = spec_for(f"{slug}.shopify.inventory")
    inbound = spec_for(f"{slug}.whatsapp.inbound")
    assert inventory is not None and inbound is not None
    topics = [
        # The seed's table says 3 partitions and 3 days.
        NewTopic(
            f"{slug}.shopify.webhooks",
            num_partitions=1,
            replication_factor=1,
            config={"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
        ),
        # Compacted with a 1-day retention in the catalog; created as a plain delete topic.
        NewTopic(
            inventory.name,
            num_partitions=3,
            replication_factor=1,
            config={**inventory.config(), "cleanup.policy": "delete"},
        ),
        NewTopic(inbound.name, num_partitions=3, replication_factor=1, config=inbound.config()),
    ]
    admin = admin_client()
    for future in admin.create_topics(topics, operation_timeout=15).values():
        future.result()
    try:
        yield slug
    finally:
        for future in admin.delete_topics([t.topic for t in topics], operation_timeout=30).values():
            future.result()


def status(slug: str, *args: str) -> str:
    out = io.StringIO()
    call_command("topics", "status", "--tenant", slug, "--no-lag", *args, stdout=out)
    return out.getvalue()


def test_status_reports_each_way_a_topic_drifted_from_the_catalog(
    drifted_tenant: str, settings: Any
) -> None:
    slug = drifted_tenant
    states = {s["topic"]: s for s in json.loads(status(slug, "--json"))["topics"]}

    webhooks = states[f"{slug}.shopify.webhooks"]
    assert webhooks["state"] == "drifted"
    assert "1 partitions, catalog says 3" in webhooks["detail"]
    assert f"retention.ms={7 * DAY_MS}, catalog says {3 * DAY_MS}" in webhooks["detail"]
    inventory = states[f"{slug}.shopify.inventory"]
    assert inventory["state"] == "drifted"
    assert inventory["detail"] == "cleanup.policy=delete, catalog says compact,delete"
    assert states[f"{slug}.whatsapp.inbound"] == {
        "topic": f"{slug}.whatsapp.inbound",
        "state": "ok",
        "detail": "",
    }
    assert states[f"{slug}.n8n.automation.trigger"]["state"] == "missing"

    text = status(slug)
    assert f"drifted  {slug}.shopify.webhooks 1 partitions, catalog says 3" in text
    assert f"1/{len(states)} catalog topics ok" in text

    # A deployment's override is the catalog the broker is compared with.
    settings.KAFKA_TOPIC_RETENTION_DAYS = {"whatsapp.inbound": 5}
    inbound = {s["topic"]: s for s in json.loads(status(slug, "--json"))["topics"]}[
        f"{slug}.whatsapp.inbound"
    ]
    assert inbound["state"] == "drifted"
    assert inbound["detail"] == f"retention.ms={3 * DAY_MS}, catalog says {5 * DAY_MS}"
