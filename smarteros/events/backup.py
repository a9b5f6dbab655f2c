"""Topic backup and restore: every topic's records (keys, values, headers, timestamps,
partitions) in one file per partition (record_files describes the format), with a manifest of
counts, offset ranges, topic configs and SHA-256 checksums. Restore refuses a directory whose
files do not match their manifest, replays into topics that are absent or empty, then reads
everything back and checks counts and content checksums again.

Used by `manage.py topics backup|restore` (the local stack keeps its in-memory broker's topics
this way) and by `manage.py dr_backup|dr_restore`. Both directions are batched (large producer
batches, consumers fetching in bulk) and the restore runs in several processes: a million
records go each way in seconds, not minutes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

from smarteros.events.producer_ids import (
    ProducerIdError,
    next_producer_id,
    plaintext_bootstrap,
    skip_producer_ids,
)
from smarteros.events.record_files import (
    CONSUME_BATCH,
    PROGRESS_EVERY,
    SCAN_WINDOW,
    PartitionWriter,
)
from smarteros.events.replay import (
    BULK_CONSUMER_CONFIG,
    ReplayFailed,
    replay_jobs,
    replay_run,
)
from smarteros.events.topics import topic_configs
from smarteros.infra.kafka import admin_client, client_config, topics_create

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
# Format 1 (content digest over the JSON of each record) is still read.
READABLE_FORMATS = (1, 2)
# Configs worth carrying over; the rest are broker defaults.
KEPT_CONFIGS = ("cleanup.policy", "retention.ms")


class BackupError(Exception):
    pass


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _record(message: Any) -> dict[str, Any]:
    _, timestamp = message.timestamp()
    return {
        "offset": message.offset(),
        "timestamp": timestamp,
        "key": _b64(message.key()),
        "value": _b64(message.value()),
        "headers": [[k, _b64(v)] for k, v in (message.headers() or [])],
    }


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

    def done(topic: str, partition: int) -> None:
        if on_done is not None:
            on_done(topic, partition, records.pop((topic, partition)))

    def record(message: Any) -> None:
        records[(message.topic(), message.partition())].append(_record(message))

    scan_partitions(consumer, partitions, on_message=record, on_done=done, timeout=timeout)
    return records


def scan_partitions(
    consumer: Consumer,
    partitions: list[tuple[str, int]],
    *,
    on_message: Callable[[Any], None],
    on_done: Callable[[str, int], None] = lambda topic, partition: None,
    timeout: float = 600,
    starts: dict[tuple[str, int], int] | None = None,
) -> None:
    """Hand every message of the given partitions to `on_message`, from the beginning (or the
    offset `starts` gives) to the end the broker reports at fetch time (partition EOF), then
    call `on_done` for the partition. At most SCAN_WINDOW partitions are assigned at a time,
    the next one as soon as one ends. `timeout` bounds the wait for the next message, not the
    whole scan."""
    if not partitions:
        return
    begin = starts or {}
    waiting = list(reversed(partitions))
    pending: set[tuple[str, int]] = set()

    def assign_more() -> None:
        added = []
        while waiting and len(pending) < SCAN_WINDOW:
            where = waiting.pop()
            pending.add(where)
            added.append(TopicPartition(where[0], where[1], begin.get(where, OFFSET_BEGINNING)))
        if added:
            consumer.incremental_assign(added)

    assign_more()
    deadline = time.monotonic() + timeout
    while pending:
        messages = consumer.consume(CONSUME_BATCH, 1.0)
        if not messages:
            if time.monotonic() > deadline:
                raise BackupError(
                    f"no end of partition for {sorted(pending)[:3]} after {timeout:.0f}s"
                )
            continue
        deadline = time.monotonic() + timeout
        ended = []
        for message in messages:
            error = message.error()
            where = (message.topic() or "", message.partition() or 0)
            if error is None:
                # A partition already handed over (written to while others are still read)
                # stops at the end it had: the rest is the next backup's.
                if where in pending:
                    on_message(message)
                continue
            if error.code() != KafkaError._PARTITION_EOF:
                raise BackupError(f"{where[0]}[{where[1]}]: {error}")
            if where in pending:
                pending.discard(where)
                ended.append(TopicPartition(where[0], where[1]))
                on_done(*where)
        if ended:
            consumer.incremental_unassign(ended)
            assign_more()
    consumer.unassign()


# Consumers reading at once: a broker that serves each partition slowly (see SCAN_WINDOW) serves
# several connections side by side.
SCAN_READERS = 4


def scan_partitions_parallel(
    bootstrap: str | None,
    partitions: list[tuple[str, int]],
    *,
    on_message: Callable[[Any], None],
    on_done: Callable[[str, int], None] = lambda topic, partition: None,
    starts: dict[tuple[str, int], int] | None = None,
    readers: int = SCAN_READERS,
) -> None:
    """scan_partitions with the partitions shared out among `readers` consumers in threads of
    their own; the callbacks are called from those threads (a partition always from the same
    one). The first reader's error is raised once all have stopped."""
    shares = [share for n in range(readers) if (share := partitions[n::readers])]
    errors: list[BaseException] = []

    def read(share: list[tuple[str, int]]) -> None:
        consumer = backup_consumer(bootstrap)
        try:
            scan_partitions(consumer, share, on_message=on_message, on_done=on_done, starts=starts)
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
        finally:
            consumer.close()

    threads = [threading.Thread(target=read, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def backup_consumer(bootstrap: str | None) -> Consumer:
    """A consumer for reading partitions to their end in bulk, in no group's name."""
    overrides: dict[str, Any] = {
        "group.id": f"smarteros-backup-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        **BULK_CONSUMER_CONFIG,
    }
    if bootstrap:
        overrides["bootstrap.servers"] = bootstrap
    return Consumer(client_config(**overrides))


_consumer = backup_consumer  # the name tests and benchmarks import


# Replay workers: processes of their own, so decoding and producing use every core (and a fair
# share of a busy machine) instead of one interpreter's.
RESTORE_WORKERS = 3


@dataclass
class BackupReport:
    topics: int
    records: int
    seconds: float
    bytes: int = 0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created": time.time(),
        "topics": {},
        "producer_id_next": producer_id_next(bootstrap, progress),
    }
    for topic in names:
        manifest["topics"][topic] = {
            "partitions": len(metadata.topics[topic].partitions),
            "config": {k: v for k, v in configs.get(topic, {}).items() if k in KEPT_CONFIGS},
            "files": {},
        }
    all_partitions = [(t, p) for t in names for p in sorted(metadata.topics[t].partitions)]
    writers = {
        (t, p): PartitionWriter(directory / f"{t}-{p}.records.gz") for t, p in all_partitions
    }
    counted = {"records": 0, "partitions": 0, "bytes": 0}

    def on_message(message: Any) -> None:
        writers[(message.topic(), message.partition())].add(message)
        counted["records"] += 1
        if counted["records"] % PROGRESS_EVERY == 0:
            progress(f"{counted['records']} records read")

    def on_done(topic: str, partition: int) -> None:
        info = writers.pop((topic, partition)).close()
        path = directory / info["file"]
        info["sha256"] = file_sha256(path)
        manifest["topics"][topic]["files"][str(partition)] = info
        counted["partitions"] += 1
        counted["bytes"] += path.stat().st_size

    consumer = backup_consumer(bootstrap)
    try:
        scan_partitions(consumer, all_partitions, on_message=on_message, on_done=on_done)
    finally:
        consumer.close()
        for writer in writers.values():
            writer.discard()
    progress(
        f"{counted['records']} records of {len(names)} topics "
        f"({counted['partitions']} partitions) written"
    )
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return BackupReport(
        topics=len(names),
        records=counted["records"],
        seconds=time.monotonic() - started,
        bytes=counted["bytes"],
    )


def verify_backup(directory: Path) -> dict[str, Any]:
    """The manifest, after checking every file against it; BackupError names the first bad one."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{manifest_path}: missing; not a backup directory")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise BackupError(f"{manifest_path}: not valid JSON ({exc})") from None
    if manifest.get("format") not in READABLE_FORMATS:
        raise BackupError(f"{manifest_path}: unsupported format {manifest.get('format')!r}")
    for topic, entry in manifest["topics"].items():
        for partition, info in entry["files"].items():
            path = directory / info["file"]
            if not path.is_file():
                raise BackupError(f"{path}: missing (topic {topic} partition {partition})")
            if file_sha256(path) != info["sha256"]:
                raise BackupError(f"{path}: checksum mismatch; the file was changed or truncated")
    return manifest  # type: ignore[no-any-return]


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
    force: bool = False,
    workers: int = RESTORE_WORKERS,
) -> RestoreReport:
    """Replay a verified backup into a broker whose topics are absent or empty, then read it all
    back and verify counts and content checksums. `force` first deletes the backup's topics
    that hold records (never while anything consumes them: some brokers crash the consumer)."""
    started = time.monotonic()
    manifest = verify_backup(directory)
    extra = {"bootstrap.servers": bootstrap} if bootstrap else {}
    admin = admin_client(**extra)
    existing = admin.list_topics(timeout=15).topics
    consumer = backup_consumer(bootstrap)
    try:
        occupied = _topics_holding_records(consumer, manifest, existing)
    finally:
        consumer.close()
    if occupied and not force:
        raise BackupError(
            f"topic {occupied[0]} already holds records ({len(occupied)} topics do); "
            "restore needs an empty broker (or --force to replace them)"
        )
    if occupied:
        for future in admin.delete_topics(occupied, operation_timeout=30).values():
            future.result()
        progress(f"deleted {len(occupied)} topics that held records")
        existing = admin.list_topics(timeout=15).topics
    to_create = [
        NewTopic(t, num_partitions=e["partitions"], replication_factor=1, config=e["config"])
        for t, e in manifest["topics"].items()
        if t not in existing
    ]
    if to_create:
        topics_create(admin, to_create, progress=progress)
    skip_used_producer_ids(bootstrap, manifest.get("producer_id_next"), progress)
    jobs = replay_jobs(directory, manifest, workers=workers, extra=extra)
    try:
        found, total = replay_run(jobs, progress)
    except ReplayFailed as exc:
        raise BackupError(f"replay failed: {exc}") from None
    for topic, entry in manifest["topics"].items():
        for partition, info in entry["files"].items():
            count, digest = found[f"{topic}:{partition}"][:2]
            if count != info["records"]:
                raise BackupError(
                    f"{topic}[{partition}]: {count} records after restore, "
                    f"backup had {info['records']}"
                )
            if digest != info["content_sha256"]:
                raise BackupError(f"{topic}[{partition}]: content checksum differs after restore")
    progress("every partition's count and content checksum match the backup")
    return RestoreReport(
        topics=len(manifest["topics"]), records=total, seconds=time.monotonic() - started
    )


def producer_id_next(bootstrap: str | None, progress: Callable[[str], None]) -> int | None:
    """The next producer id the broker hands out (see producer_ids), or None if it cannot say."""
    plain = plaintext_bootstrap(bootstrap)
    if plain is None:
        return None
    try:
        return next_producer_id(plain)
    except (OSError, ProducerIdError) as exc:
        progress(f"the broker's next producer id is unknown ({exc}); not kept in the backup")
        return None


def skip_used_producer_ids(
    bootstrap: str | None, past: int | None, progress: Callable[[str], None]
) -> None:
    """Before writing, move a broker that forgot its producer ids past those handed out by the
    broker that was backed up, so that no producer still running shares an id with a new one."""
    plain = plaintext_bootstrap(bootstrap)
    if past is None or plain is None:
        return
    try:
        used = skip_producer_ids(plain, past)
    except (OSError, ProducerIdError) as exc:
        progress(f"producer ids not moved past {past}: {exc}")
        return
    if used > 1:
        progress(f"skipped {used} producer ids the backed-up broker had handed out")


def _topics_holding_records(
    consumer: Consumer, manifest: dict[str, Any], existing: dict[str, Any]
) -> list[str]:
    present = [(t, p) for t in manifest["topics"] if t in existing for p in existing[t].partitions]
    occupied: set[str] = set()
    scan_partitions(consumer, present, on_message=lambda message: occupied.add(message.topic()))
    return sorted(occupied)


def topics_with_records(*, bootstrap: str | None = None) -> list[str]:
    """The broker's non-internal topics that hold records, by their offsets (a quick look: the
    restore itself reads the partitions before writing)."""
    extra = {"bootstrap.servers": bootstrap} if bootstrap else {}
    metadata = admin_client(**extra).list_topics(timeout=15)
    consumer = backup_consumer(bootstrap)
    try:
        return sorted(
            name
            for name, info in metadata.topics.items()
            if not name.startswith("__")
            and any(
                (lambda marks: marks[1] > marks[0])(
                    consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                )
                for p in info.partitions
            )
        )
    finally:
        consumer.close()
