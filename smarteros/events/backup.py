"""Topic backup and restore: every topic's records (keys, values, headers, timestamps,
partitions) in gzip'd JSON-lines files, one per partition, with a manifest of counts, topic
configs and SHA-256 checksums. Restore refuses a directory whose files do not match their
manifest, replays into topics that are absent or empty, then reads everything back and checks
counts and checksums again.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from smarteros.events.topics import topic_configs
from smarteros.infra.kafka import admin_client, client_config

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Configs worth carrying over; the rest are broker defaults.
KEPT_CONFIGS = ("cleanup.policy", "retention.ms")


class BackupError(Exception):
    pass


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _record(message: Any) -> dict[str, Any]:
    _, timestamp = message.timestamp()
    return {
        "offset": message.offset(),
        "timestamp": timestamp,
        "key": _b64(message.key()),
        "value": _b64(message.value()),
        "headers": [[k, _b64(v)] for k, v in (message.headers() or [])],
    }


def _content_digest(records: list[dict[str, Any]]) -> str:
    """A digest of what matters in a partition (not offsets, which a restore may renumber)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(
            json.dumps(
                [record["key"], record["value"], record["headers"], record["timestamp"]]
            ).encode()
        )
    return digest.hexdigest()


PartitionDone = Callable[[str, int, list[dict[str, Any]]], None]


def read_partitions(
    consumer: Consumer,
    partitions: list[tuple[str, int]],
    *,
    timeout: float = 600,
    on_done: PartitionDone | None = None,
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Every record of the given partitions, from the beginning to the end the broker reports at
    fetch time (partition EOF), which some Kafka-API brokers answer more reliably than
    ListOffsets. All partitions are read at once. With `on_done`, each partition is handed over
    as soon as it is complete and not kept (so memory holds only unfinished partitions)."""
    records: dict[tuple[str, int], list[dict[str, Any]]] = {tp: [] for tp in partitions}
    if not partitions:
        return records
    pending = set(partitions)
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in partitions])
    deadline = time.monotonic() + timeout
    while pending:
        message = consumer.poll(1.0)
        if message is None:
            if time.monotonic() > deadline:
                raise BackupError(
                    f"no end of partition for {sorted(pending)[:3]} after {timeout:.0f}s"
                )
            continue
        where = (message.topic() or "", message.partition() or 0)
        error = message.error()
        if error is None:
            records[where].append(_record(message))
            continue
        if error.code() != KafkaError._PARTITION_EOF:
            raise BackupError(f"{where[0]}[{where[1]}]: {error}")
        if where in pending:
            pending.discard(where)
            if on_done is not None:
                on_done(where[0], where[1], records.pop(where))
    consumer.unassign()
    return records


def _consumer(bootstrap: str | None) -> Consumer:
    overrides: dict[str, Any] = {
        "group.id": f"smarteros-backup-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 50,
    }
    if bootstrap:
        overrides["bootstrap.servers"] = bootstrap
    return Consumer(client_config(**overrides))


@dataclass
class BackupReport:
    topics: int
    records: int
    seconds: float


def topics_backup(
    directory: Path,
    *,
    bootstrap: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> BackupReport:
    """Write every non-internal topic of the broker to `directory`."""
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    admin = admin_client(**({"bootstrap.servers": bootstrap} if bootstrap else {}))
    metadata = admin.list_topics(timeout=15)
    names = sorted(t for t in metadata.topics if not t.startswith("__"))
    configs = topic_configs(names, admin=admin) if names else {}
    consumer = _consumer(bootstrap)
    manifest: dict[str, Any] = {"format": FORMAT_VERSION, "created": time.time(), "topics": {}}
    for topic in names:
        manifest["topics"][topic] = {
            "partitions": len(metadata.topics[topic].partitions),
            "config": {k: v for k, v in configs.get(topic, {}).items() if k in KEPT_CONFIGS},
            "files": {},
        }
    counted = {"records": 0, "partitions": 0}
    all_partitions = [(t, p) for t in names for p in sorted(metadata.topics[t].partitions)]

    def write(topic: str, partition: int, records: list[dict[str, Any]]) -> None:
        name = f"{topic}-{partition}.jsonl.gz"
        raw = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records), mtime=0)
        (directory / name).write_bytes(raw)
        manifest["topics"][topic]["files"][str(partition)] = {
            "file": name,
            "records": len(records),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "content_sha256": _content_digest(records),
        }
        counted["records"] += len(records)
        counted["partitions"] += 1
        if records or counted["partitions"] % 100 == 0:
            progress(
                f"{topic}[{partition}]: {len(records)} records ({counted['partitions']}/{len(all_partitions)} partitions)"
            )

    try:
        read_partitions(consumer, all_partitions, on_done=write)
    finally:
        consumer.close()
    total = counted["records"]
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return BackupReport(topics=len(names), records=total, seconds=time.monotonic() - started)


def verify_backup(directory: Path) -> dict[str, Any]:
    """The manifest, after checking every file against it; BackupError names the first bad one."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{manifest_path}: missing; not a backup directory")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise BackupError(f"{manifest_path}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{manifest_path}: unsupported format {manifest.get('format')!r}")
    for topic, entry in manifest["topics"].items():
        for partition, info in entry["files"].items():
            path = directory / info["file"]
            if not path.is_file():
                raise BackupError(f"{path}: missing (topic {topic} partition {partition})")
            if hashlib.sha256(path.read_bytes()).hexdigest() != info["sha256"]:
                raise BackupError(f"{path}: checksum mismatch; the file was changed or truncated")
    return manifest  # type: ignore[no-any-return]


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for line in gzip.decompress(path.read_bytes()).splitlines():
        if line:
            yield json.loads(line)


@dataclass
class RestoreReport:
    topics: int
    records: int
    seconds: float


def topics_restore(
    directory: Path,
    *,
    bootstrap: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RestoreReport:
    """Replay a verified backup into a broker whose topics are absent or empty, then verify."""
    started = time.monotonic()
    manifest = verify_backup(directory)
    extra = {"bootstrap.servers": bootstrap} if bootstrap else {}
    admin = admin_client(**extra)
    existing = admin.list_topics(timeout=15).topics
    consumer = _consumer(bootstrap)
    try:
        present = [
            (t, p) for t in manifest["topics"] if t in existing for p in existing[t].partitions
        ]
        for (topic, _), held in read_partitions(consumer, present).items():
            if held:
                raise BackupError(
                    f"topic {topic} already holds records; restore needs an empty broker"
                )
        to_create = [
            NewTopic(t, num_partitions=e["partitions"], replication_factor=1, config=e["config"])
            for t, e in manifest["topics"].items()
            if t not in existing
        ]
        if to_create:
            for future in admin.create_topics(to_create, operation_timeout=30).values():
                future.result()
        producer = Producer(
            client_config(**{"enable.idempotence": True, "acks": "all", "linger.ms": 20, **extra})
        )
        total = 0
        for topic, entry in sorted(manifest["topics"].items()):
            for partition, info in entry["files"].items():
                for record in _records(directory / info["file"]):
                    producer.produce(
                        topic,
                        partition=int(partition),
                        key=_unb64(record["key"]),
                        value=_unb64(record["value"]),
                        headers=[(k, _unb64(v)) for k, v in record["headers"]],
                        timestamp=record["timestamp"],
                    )
                    producer.poll(0)
                    total += 1
            progress(f"{topic}: replayed")
        if producer.flush(120):
            raise BackupError("the broker did not acknowledge every record")
        restored = read_partitions(
            consumer, [(t, int(p)) for t, e in manifest["topics"].items() for p in e["files"]]
        )
        for topic, entry in manifest["topics"].items():
            for partition, info in entry["files"].items():
                records = restored[(topic, int(partition))]
                if len(records) != info["records"]:
                    raise BackupError(
                        f"{topic}[{partition}]: {len(records)} records after restore, backup had {info['records']}"
                    )
                if _content_digest(records) != info["content_sha256"]:
                    raise BackupError(
                        f"{topic}[{partition}]: content checksum differs after restore"
                    )
    finally:
        consumer.close()
    return RestoreReport(
        topics=len(manifest["topics"]), records=total, seconds=time.monotonic() - started
    )
