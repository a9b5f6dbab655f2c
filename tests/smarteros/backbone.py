"""Helpers for the event backbone's tests: reading topics back, counting unsent outbox rows."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped


def read_all(topic: str, expected: int = 0) -> list[Any]:
    """Every message on `topic` (all partitions, to their ends); waits for at least `expected`."""
    from smarteros.events.backup import _consumer
    from smarteros.infra.kafka import admin_client

    deadline = time.monotonic() + 60
    while True:
        consumer = _consumer(None)
        messages: list[Any] = []
        try:
            metadata = admin_client().list_topics(topic, timeout=10).topics.get(topic)
            for partition in sorted(metadata.partitions) if metadata and not metadata.error else []:
                consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
                while (message := consumer.poll(5)) is not None and not message.error():
                    messages.append(message)
        finally:
            consumer.close()
        if len(messages) >= expected or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def unsent() -> int:
    with dangerously_unscoped():
        return OutboxEvent.objects.filter(sent_at__isnull=True).count()
