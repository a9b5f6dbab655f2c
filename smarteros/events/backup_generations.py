"""Generations of topic backups (the local stack's broker keeps its topics only in memory):
incremental, verified before an older one is dropped, and never taken from a broker whose
restore did not complete.

A backup folder holds `segments/` (files of records, record_files format 2, each a run of one
partition's records) and `generations/<n>.json`, each generation's manifest: per topic its
partitions and configs, per partition its segments in order (file, records, SHA-256 of the file
and of its records) and where the broker stood, `listed` (its high-water mark, as ListOffsets
gave it before reading) and `next` (the offset after the last record read). The manifest names
that broker by a token, the marker topic `__smarteros-backup-<token>` created on it once its
restore completed (or, with no backup yet, when it was adopted as the first).

A backup lists every partition's high-water mark in one request and reads only partitions whose
mark moved, from `next` to their end: a stop at a thousand idle tenants reads nothing. It refuses
a broker without the newest generation's marker, so a broker whose restore failed part-way is
never backed up over the last good generation. The restore is generations_restore's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from smarteros.events.backup import (
    KEPT_CONFIGS,
    MANIFEST,
    BackupError,
    BackupReport,
    file_sha256,
    producer_id_next,
    scan_partitions_parallel,
)
from smarteros.events.record_files import PROGRESS_EVERY, PartitionWriter
from smarteros.events.topics import topic_configs
from smarteros.infra.kafka import admin_client, topics_create

FORMAT = 3
MARKER = "__smarteros-backup-"
# Generations kept: the newest and the ones before it, in case it proves unreadable.
KEEP = 3
# Partitions per ListOffsets / DescribeConfigs request.
LIST_CHUNK = 5000

Progress = Callable[[str], None]


class BackupRefused(BackupError):
    """Nothing was written: the broker is not the one the newest generation describes."""


def generation_numbers(root: Path) -> list[int]:
    """The generations present, oldest first."""
    folder = root / "generations"
    if not folder.is_dir():
        return []
    return sorted(int(path.stem) for path in folder.glob("*.json") if path.stem.isdigit())


def generation_read(root: Path, number: int) -> dict[str, Any]:
    path = root / "generations" / f"{number:06d}.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}: unreadable ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: unsupported format {manifest.get('format')!r}")
    return manifest  # type: ignore[no-any-return]


def generation_verify(root: Path, number: int) -> dict[str, Any]:
    """The manifest of generation `number` after checking every segment it names against its
    checksum and every partition's count against its segments'; BackupError names the first
    fault."""
    manifest = generation_read(root, number)
    _verify(root, manifest, f"generation {number}")
    return manifest


def _verify(root: Path, manifest: dict[str, Any], name: str) -> None:
    for key, part in manifest["partitions"].items():
        if sum(segment["records"] for segment in part["segments"]) != part["records"]:
            raise BackupError(f"{name}: {key} counts differ from its segments")
        for segment in part["segments"]:
            path = root / "segments" / segment["file"]
            if not path.is_file():
                raise BackupError(f"{name}: {path} is missing ({key})")
            if file_sha256(path) != segment["sha256"]:
                raise BackupError(f"{name}: {path}: checksum mismatch")


def generation_newest_good(root: Path, progress: Progress) -> tuple[int, dict[str, Any]] | None:
    """The newest generation that verifies (saying why each newer one does not), or None."""
    for number in reversed(generation_numbers(root)):
        try:
            return number, generation_verify(root, number)
        except BackupError as exc:
            progress(f"generation {number} skipped: {exc}")
    return None


def _owner_only(root: Path) -> None:
    """Backups hold every tenant's messages: only the owner reads them."""
    for folder in (root, root / "segments", root / "generations"):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)


@contextlib.contextmanager
def generations_locked(root: Path) -> Iterator[None]:
    """One backup or restore at a time per folder: a backup drops the segments no generation
    names, which would include another's unfinished ones."""
    _owner_only(root)
    with os.fdopen(os.open(root / ".lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"{root}: another backup or restore is running") from None
        yield


def generation_write(root: Path, manifest: dict[str, Any]) -> int:
    """Verify `manifest` against its segments, write it as the next generation (atomically),
    then drop generations past KEEP and the segments none of the rest names. Returns its
    number."""
    numbers = generation_numbers(root)
    number = (numbers[-1] if numbers else 0) + 1
    _verify(root, manifest, f"generation {number}")
    path = root / "generations" / f"{number:06d}.json"
    staging = path.with_suffix(".tmp")
    with os.fdopen(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        json.dump(manifest, file, separators=(",", ":"), sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staging, path)
    kept = [*numbers, number][-KEEP:]
    for old in numbers:
        if old not in kept:
            (root / "generations" / f"{old:06d}.json").unlink()
    named = {
        segment["file"]
        for n in kept
        for part in generation_read(root, n)["partitions"].values()
        for segment in part["segments"]
    }
    for segment_path in (root / "segments").iterdir():
        if segment_path.name not in named:
            segment_path.unlink()
    return number


def legacy_import(root: Path, progress: Progress) -> None:
    """Turn a single-folder backup (backup.topics_backup, format 2) into generation 1. Its
    files are linked, not copied; it is removed only once the generation verifies."""
    legacy = root / MANIFEST
    if not legacy.is_file() or generation_numbers(root):
        return
    old = json.loads(legacy.read_text())
    if old.get("format") != 2:
        raise BackupError(f"{legacy}: format {old.get('format')!r}; restore it with topics restore")
    _owner_only(root)
    partitions: dict[str, Any] = {}
    for topic, entry in old["topics"].items():
        for partition, info in entry["files"].items():
            if not info["records"]:
                continue
            os.link(root / info["file"], root / "segments" / info["file"])
            (root / "segments" / info["file"]).chmod(0o600)
            partitions[f"{topic}:{partition}"] = partition_entry(
                [_segment_info(root / "segments" / info["file"], info)], listed=0, next_offset=0
            )
    manifest = {
        "format": FORMAT,
        "created": old["created"],
        "broker": None,  # taken before generations: no broker carries its marker
        "producer_id_next": old.get("producer_id_next"),
        "topics": {
            t: {"partitions": e["partitions"], "config": e["config"]}
            for t, e in old["topics"].items()
        },
        "partitions": partitions,
    }
    generation_write(root, manifest)
    for entry in old["topics"].values():
        for info in entry["files"].values():
            (root / info["file"]).unlink(missing_ok=True)
    legacy.unlink()
    progress(f"converted the single-folder backup in {root} into generation 1")


def _segment_info(path: Path, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": path.name,
        "records": info["records"],
        "sha256": file_sha256(path),
        "content_sha256": info["content_sha256"],
    }


def partition_entry(
    segments: list[dict[str, Any]], *, listed: int, next_offset: int
) -> dict[str, Any]:
    return {
        "segments": segments,
        "records": sum(segment["records"] for segment in segments),
        "listed": listed,
        "next": next_offset,
    }


def high_water_marks(admin: AdminClient, partitions: list[tuple[str, int]]) -> dict[str, int]:
    """`"topic:partition" -> high-water mark`, in requests of LIST_CHUNK partitions. Some
    brokers (Tansu) answer the base offset of the last batch plus one rather than the next
    offset; it still grows with every write, which is all a backup needs to know."""
    marks: dict[str, int] = {}
    for start in range(0, len(partitions), LIST_CHUNK):
        chunk = partitions[start : start + LIST_CHUNK]
        futures = admin.list_offsets(
            {TopicPartition(t, p): OffsetSpec.latest() for t, p in chunk}, request_timeout=60
        )
        for tp, future in futures.items():
            marks[f"{tp.topic}:{tp.partition}"] = future.result().offset
    return marks


def marker_tokens(topics: Any) -> set[str]:
    return {name[len(MARKER) :] for name in topics if name.startswith(MARKER)}


def generations_backup(
    root: Path, *, bootstrap: str | None = None, progress: Progress = lambda _: None
) -> BackupReport:
    """Write a generation holding what changed since the newest one (see the module's
    docstring); BackupRefused if the broker is not the one that generation describes."""
    with generations_locked(root):
        return backup_unlocked(root, bootstrap, progress)


def backup_unlocked(root: Path, bootstrap: str | None, progress: Progress) -> BackupReport:
    started = time.monotonic()
    legacy_import(root, progress)
    extra = {"bootstrap.servers": bootstrap} if bootstrap else {}
    admin = admin_client(**extra)
    metadata = admin.list_topics(timeout=30)
    numbers = generation_numbers(root)
    if numbers:
        try:
            previous = generation_read(root, numbers[-1])
        except BackupError as exc:
            raise BackupRefused(
                f"not backed up: the newest generation is unreadable ({exc}), so this broker "
                "cannot have been restored from it; it stays as it is"
            ) from None
        token = previous["broker"]
        if token not in marker_tokens(metadata.topics):
            raise BackupRefused(
                f"not backed up: this broker was not restored from generation {numbers[-1]} "
                "(its restore did not complete, or it started without one); that generation "
                "stays the last good backup"
            )
    else:  # the first backup of all: this broker is the starting point
        previous = {"topics": {}, "partitions": {}}
        token = _mark(admin, progress)
    names = sorted(t for t in metadata.topics if not t.startswith("__"))
    every = [(t, p) for t in names for p in sorted(metadata.topics[t].partitions)]
    marks = high_water_marks(admin, every)
    empty = partition_entry([], listed=0, next_offset=0)
    parts: dict[str, Any] = {}
    starts: dict[tuple[str, int], int] = {}
    for topic, partition in every:
        key = f"{topic}:{partition}"
        before = previous["partitions"].get(key, empty)
        if marks[key] == before["listed"]:
            if before["records"] or before["listed"]:
                parts[key] = before
            continue
        if marks[key] < before["listed"]:  # recreated since: what it held is gone
            before = empty
        parts[key] = {**before, "listed": marks[key]}
        starts[(topic, partition)] = before["next"]
    read = _read_changes(root, bootstrap, starts, parts, progress)
    configs = {t: e["config"] for t, e in previous["topics"].items() if t in metadata.topics}
    configs.update(_configs(admin, [t for t in names if t not in configs]))
    manifest = {
        "format": FORMAT,
        "created": time.time(),
        "broker": token,
        "producer_id_next": producer_id_next(bootstrap, progress),
        "topics": {
            t: {"partitions": len(metadata.topics[t].partitions), "config": configs.get(t, {})}
            for t in names
        },
        "partitions": parts,
    }
    number = generation_write(root, manifest)
    progress(
        f"generation {number}: {read['records']} new records from {len(starts)} changed "
        f"partitions of {len(every)}; {sum(p['records'] for p in parts.values())} records in all"
    )
    return BackupReport(
        topics=len(names),
        records=read["records"],
        seconds=time.monotonic() - started,
        bytes=read["bytes"],
    )


def _read_changes(
    root: Path,
    bootstrap: str | None,
    starts: dict[tuple[str, int], int],
    parts: dict[str, Any],
    progress: Progress,
) -> dict[str, int]:
    """Read each partition of `starts` from its offset to its end into a new segment, and add
    it to its entry in `parts` (with the new `next`)."""
    counted = {"records": 0, "bytes": 0}
    writers = {
        tp: PartitionWriter(
            root / "segments" / f"{tp[0]}-{tp[1]}-{off}-{uuid.uuid4().hex[:8]}.records.gz"
        )
        for tp, off in starts.items()
    }

    lock = threading.Lock()  # the readers' threads share the counts

    def on_message(message: Any) -> None:
        writers[(message.topic(), message.partition())].add(message)
        with lock:
            counted["records"] += 1
            if counted["records"] % PROGRESS_EVERY == 0:
                progress(f"{counted['records']} records read")

    def on_done(topic: str, partition: int) -> None:
        writer = writers.pop((topic, partition))
        info = writer.close()
        key = f"{topic}:{partition}"
        if not info["records"]:
            writer.discard()
            return
        writer.path.chmod(0o600)
        segment = _segment_info(writer.path, info)
        with lock:
            counted["bytes"] += writer.path.stat().st_size
        segments = [*parts[key]["segments"], segment]
        parts[key] = partition_entry(
            segments, listed=parts[key]["listed"], next_offset=info["last_offset"] + 1
        )

    try:
        scan_partitions_parallel(
            bootstrap, list(starts), on_message=on_message, on_done=on_done, starts=starts
        )
    finally:
        for writer in writers.values():
            writer.discard()
    return counted


def _configs(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(names), LIST_CHUNK):
        chunk = topic_configs(names[start : start + LIST_CHUNK], admin=admin, timeout=60)
        found.update(
            {t: {k: v for k, v in c.items() if k in KEPT_CONFIGS} for t, c in chunk.items()}
        )
    return found


def _mark(admin: AdminClient, progress: Progress) -> str:
    """Create a new marker topic on the broker; returns its token."""
    token = secrets.token_hex(8)
    topics_create(admin, [NewTopic(MARKER + token, num_partitions=1, replication_factor=1)])
    progress(f"marked the broker as backed up under {token}")
    return token


def split_key(key: str) -> tuple[str, int]:
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


_newest_token: dict[Path, tuple[float, str | None]] = {}


def generations_broker_problem(root: Path, *, restore_log: str = "") -> str:
    """Why the broker is not the one the newest generation in `root` describes (its restore
    failed or did not run), with the command that retries it; "" when it is, or when there is
    no generation yet. Cheap enough for /readyz: the manifest is read again only when it
    changes, and the broker is asked about one topic."""
    numbers = generation_numbers(root)
    if not numbers:
        return ""
    path = root / "generations" / f"{numbers[-1]:06d}.json"
    stamp = path.stat().st_mtime
    cached = _newest_token.get(root)
    if cached is None or cached[0] != stamp:
        try:
            token = generation_read(root, numbers[-1])["broker"]
        except BackupError:  # unreadable: no broker can have been restored from it
            token = None
        _newest_token[root] = cached = (stamp, token)
    token = cached[1]
    if token is not None:
        # Asked by name, some brokers (Tansu) create a topic they lack unless told not to.
        admin = admin_client(**{"allow.auto.create.topics": False})
        metadata = admin.list_topics(topic=MARKER + token, timeout=5)
        marker = metadata.topics.get(MARKER + token)
        if marker is not None and marker.error is None:
            return ""
    where = f" (see {restore_log})" if restore_log else ""
    return (
        f"not restored from generation {numbers[-1]} of {root}{where}; no backup is taken "
        "until it is. Retry: stop and start `make run` again, or run `.venv/bin/python "
        f"manage.py topics generation-restore {root}` with the processes stopped"
    )
