"""Telemetry records keep flowing after the broker restarts without its producer state (found
by the soak: the idempotent producer turned fatal, and every call's record was dropped until
the web process was restarted)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from smarteros.events.backup import read_partitions, topics_backup, topics_restore
from smarteros.events.catalog import platform_topics
from smarteros.events.envelope import Envelope
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import forget_producers, get_telemetry_producer
from telemetry import recording
from tests.processes import ServerProcess, start_kafka_broker


def record(n: int) -> Envelope:
    return Envelope(type="operation.called", source="test", tenant="acme", data={"n": n})


def ids_on_topic(bootstrap: str) -> set[str]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "read-back", "enable.partition.eof": True}
    )
    try:
        metadata = consumer.list_topics(recording.TELEMETRY_TOPIC, timeout=10)
        partitions = [
            (recording.TELEMETRY_TOPIC, p)
            for p in metadata.topics[recording.TELEMETRY_TOPIC].partitions
        ]
        records = read_partitions(consumer, partitions, timeout=30)
    finally:
        consumer.close()
    return {
        Envelope.from_bytes(base64.b64decode(record["value"])).id
        for partition in records.values()
        for record in partition
    }


def test_records_flow_on_after_the_broker_restarts_empty(
    broker: ServerProcess, settings: Any
) -> None:
    settings.KAFKA_TELEMETRY_RESEND_MS = 3000
    forget_producers()
    before = [record(n) for n in range(5)]
    for envelope in before:
        recording._produce(recording.TELEMETRY_TOPIC, "acme", envelope)
    assert get_telemetry_producer().flush(10) == 0

    broker.stop()  # a broker that keeps its data in memory comes back without producer state
    restarted = start_kafka_broker(broker.port)
    try:
        topics_sync(platform_topics())
        after = [record(n) for n in range(5, 10)]
        for envelope in after:
            recording._produce(recording.TELEMETRY_TOPIC, "acme", envelope)
        assert recording.telemetry_flush(30) == 0
        assert {e.id for e in after} <= ids_on_topic(settings.KAFKA_BOOTSTRAP_SERVERS)
    finally:
        forget_producers()
        restarted.stop()


def test_records_flow_on_when_the_restored_broker_fails_the_producer_for_good(
    broker: ServerProcess, settings: Any, tmp_path: Path
) -> None:
    """As the soak restarts the local broker: backup, restart, restore past the producer ids it
    handed out. The running producer's next batch is then refused for good (out of order
    sequence); the records it held are sent again through a new producer, and no call that
    records telemetry sees the error (it was raised from poll, losing them)."""
    settings.KAFKA_TELEMETRY_RESEND_MS = 3000
    bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS
    forget_producers()
    for n in range(5):
        recording._produce(recording.TELEMETRY_TOPIC, "acme", record(n))
    assert recording.telemetry_flush(10) == 0
    topics_backup(tmp_path / "backup", bootstrap=bootstrap)

    broker.stop()
    restarted = start_kafka_broker(broker.port)
    try:
        topics_restore(tmp_path / "backup", bootstrap=bootstrap, workers=1)
        after = [record(n) for n in range(5, 25)]
        for envelope in after:
            recording._produce(recording.TELEMETRY_TOPIC, "acme", envelope)  # polls
            time.sleep(0.05)  # the broker's answers arrive between calls, as in a server
        assert recording.telemetry_flush(30) == 0
        assert {e.id for e in after} <= ids_on_topic(bootstrap)
    finally:
        forget_producers()
        restarted.stop()
