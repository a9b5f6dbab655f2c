"""What the viewer reads from Kafka: its consumers, where each partition really ends, and each
message as shown (decoded, masked, JSON-ready)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from smarteros.infra.kafka import client_config
from telemetry.topics.masking import Masker

MAX_VALUE_CHARS = 64_000
# The longest a look for the partitions' ends may take. A broker answers an empty fetch within
# fetch.wait.max.ms, so the ends are known in about that; this only bounds a broker that is stuck.
END_SECONDS = 2.0


def viewer_consumer(**overrides: Any) -> Consumer:
    """A consumer for showing topics: partitions are assigned (the group id only satisfies the
    client; it never joins), nothing is committed, and the end of each partition is reported
    (partition EOF), which `read_to_end` and `partition_ends` need."""
    return Consumer(
        client_config(
            **{
                "group.id": "smarteros-topic-viewer",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                # An end is reported on an empty fetch, which the broker holds up to this long.
                "fetch.wait.max.ms": 50,
                **overrides,
            }
        )
    )


def read_to_end(
    consumer: Consumer, topic: str, starts: dict[int, int], *, seconds: float
) -> Iterator[Any]:
    """The messages of `topic` from each partition's offset in `starts` until the broker says
    that partition has nothing more (partition EOF), for `seconds` at most; the partitions stay
    assigned. Not up to the listed high watermark: the local broker (Tansu) lists its last
    batch's first offset + 1, short of the end after a producer's batch of several records,
    while the watermark it sends with each fetch, which ends a partition, is right."""
    pending = set(starts)
    if not pending:
        return
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in sorted(starts.items())])
    deadline = time.monotonic() + seconds
    while pending and (left := deadline - time.monotonic()) > 0:
        for message in consumer.consume(500, min(0.1, left)):
            if message.partition() not in pending:
                continue  # ended already: what came since is past the end we report
            error = message.error()
            if error is None:
                yield message
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())


def partition_ends(
    consumer: Consumer, topic: str, highs: dict[int, int], *, seconds: float = END_SECONDS
) -> dict[int, int]:
    """The offset after each partition's last message, given its listed high watermark (which
    is never past the end): read from there to the end (`read_to_end`). Where watermarks are
    right nothing is read and it costs one empty fetch; a partition whose end is not reported
    within `seconds` keeps what was seen. Leaves the consumer unassigned."""
    ends = dict(highs)
    for message in read_to_end(consumer, topic, highs, seconds=seconds):
        p = message.partition()
        ends[p] = max(ends[p], (message.offset() or 0) + 1)
    consumer.unassign()
    return ends


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def message_record(message: Any, masker: Masker) -> dict[str, Any]:
    """The masked record of a confluent-kafka message: key, partition, offset, timestamp,
    headers, value (parsed JSON when it is JSON) and the envelope's summary fields."""
    raw_value = message.value()
    text = _text(raw_value)
    value: Any = text
    if text is not None and text[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "…"
    value = masker.envelope_value(value) if not isinstance(value, str) else masker.text(value)
    headers = masker.headers([(name, _text(raw) or "") for name, raw in (message.headers() or [])])
    key = _text(message.key())
    _, timestamp = message.timestamp()
    record: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp,
        "key": masker.text(key) if key is not None else None,
        "headers": headers,
        "value": value,
        "size": len(raw_value or b"") + len(message.key() or b""),
    }
    if isinstance(value, dict) and "type" in value and "data" in value:
        record["envelope"] = {
            "id": value.get("id"),
            "type": value.get("type"),
            "source": value.get("source"),
            "tenant": value.get("tenant"),
            "schema_version": value.get("schema_version"),
            "trace_id": value.get("trace_id"),
            "time": value.get("time"),
        }
    reason = next((v for k, v in headers if k == "dlq.reason"), None)
    if reason is not None:
        record["dlq_reason"] = reason
    return record
