"""A broker kept in memory forgets the producer ids it handed out when it restarts: without care
a restored topic's writer gets the id of a producer that is still running, and that producer's
next batches are acknowledged and silently dropped as duplicates (found by the soak as missing
telemetry). The backup notes the broker's next producer id, and the restore moves the restarted
broker past it first."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from smarteros.events.backup import _consumer, read_partitions, topics_backup, topics_restore
from smarteros.events.producer_ids import next_producer_id, skip_producer_ids
from tests.processes import kafka_broker, start_kafka_broker

TOPIC = "acme.smarteros.events"


def _producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})


def _write(producer: Producer, tag: str, count: int) -> tuple[set[bytes], list[str]]:
    """Write `count` records; those the broker acknowledged, and the errors the producer saw."""
    acknowledged: set[bytes] = set()
    errors: list[str] = []

    def delivered(err: object, msg: object) -> None:
        if err is None:
            acknowledged.add(msg.value())  # type: ignore[attr-defined]
        else:
            errors.append(str(err))

    try:
        for n in range(count):
            producer.produce(TOPIC, value=f"{tag}-{n}".encode(), partition=0, on_delivery=delivered)
        producer.flush(15)
    except KafkaException as exc:
        errors.append(str(exc))
    return acknowledged, errors


def test_a_producer_that_outlives_the_brokers_restart_keeps_every_write(tmp_path: Path) -> None:
    with kafka_broker() as broker:
        bootstrap = f"127.0.0.1:{broker.port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
            future.result()
        # Two processes write to one partition: the backup holds more of it than either wrote.
        survivor, other = _producer(bootstrap), _producer(bootstrap)
        assert len(_write(survivor, "survivor", 20)[0]) == 20
        assert len(_write(other, "other", 20)[0]) == 20
        topics_backup(tmp_path / "backup", bootstrap=bootstrap)
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert manifest["producer_id_next"] >= 3  # two producers were given ids

        broker.stop()
        restarted = start_kafka_broker(broker.port)
        try:
            # One writer, so that it would be the first id handed out: the survivor's.
            topics_restore(tmp_path / "backup", bootstrap=bootstrap, workers=1)
            acknowledged, errors = _write(survivor, "later", 20)
            consumer = _consumer(bootstrap)
            try:
                records = read_partitions(consumer, [(TOPIC, 0)], timeout=30)[(TOPIC, 0)]
            finally:
                consumer.close()
            values = [base64.b64decode(record["value"]) for record in records]
            handed_out_next = next_producer_id(bootstrap) - 1
        finally:
            other.flush(1)
            restarted.stop()
    # Each later write is on the topic or was refused loudly (the broker no longer knows the
    # survivor's id: it must start a new producer), never acknowledged and then missing.
    assert acknowledged <= set(values)
    assert len(acknowledged) == 20 or errors
    assert len(values) == 40 + len(acknowledged)
    assert handed_out_next > manifest["producer_id_next"]


def test_skipping_producer_ids_reaches_the_mark_and_no_further() -> None:
    with kafka_broker() as broker:
        bootstrap = f"127.0.0.1:{broker.port}"
        first = next_producer_id(bootstrap)
        assert skip_producer_ids(bootstrap, first + 1200) == 1200
        assert next_producer_id(bootstrap) == first + 1201  # first + 1200 was handed out
        assert skip_producer_ids(bootstrap, 5) == 1  # past it already: one asked, none skipped
