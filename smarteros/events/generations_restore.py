"""Restoring a generation of topic backups (see backup_generations) into a broker: topics
created in batches, partitions already holding exactly their records skipped (so a restore that
stopped continues), the rest replayed in bulk by worker processes and read back, then a new
generation naming the broker, and its marker."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from smarteros.events.backup import (
    RESTORE_WORKERS,
    BackupError,
    RestoreReport,
    backup_consumer,
    skip_used_producer_ids,
)
from smarteros.events.backup_generations import (
    MARKER,
    Progress,
    backup_unlocked,
    generation_newest_good,
    generation_numbers,
    generation_write,
    generations_locked,
    high_water_marks,
    legacy_import,
    marker_tokens,
    partition_entry,
    split_key,
)
from smarteros.events.record_files import read_back
from smarteros.events.replay import ReplayFailed, replay_jobs_of, replay_run
from smarteros.infra.kafka import admin_client, topics_create


def generations_restore(
    root: Path,
    *,
    bootstrap: str | None = None,
    progress: Progress = lambda _: None,
    workers: int = RESTORE_WORKERS,
) -> tuple[RestoreReport, float | None]:
    """Replay the newest generation that verifies into the broker and mark it (see the
    module's docstring); also returns when that generation was taken (None without one).
    Partitions already holding exactly their records are left as they are, so a restore that
    stopped part-way continues; one holding other records stops it with BackupError."""
    with generations_locked(root):
        return _restore(root, bootstrap, progress, workers)


def _restore(
    root: Path, bootstrap: str | None, progress: Progress, workers: int
) -> tuple[RestoreReport, float | None]:
    started = time.monotonic()
    legacy_import(root, progress)
    extra = {"bootstrap.servers": bootstrap} if bootstrap else {}
    admin = admin_client(**extra)
    found = generation_newest_good(root, progress)
    if found is None:
        if generation_numbers(root):
            raise BackupError(f"no generation in {root} verifies; nothing restored")
        progress(f"no backup in {root} yet: this broker is the first generation")
        backup_unlocked(root, bootstrap, progress)
        return RestoreReport(topics=0, records=0, seconds=time.monotonic() - started), None
    number, manifest = found
    existing = admin.list_topics(timeout=30).topics
    if manifest["broker"] in marker_tokens(existing):
        progress(f"this broker was restored from generation {number} already")
        return RestoreReport(len(manifest["topics"]), 0, time.monotonic() - started), None
    missing = [
        NewTopic(t, num_partitions=e["partitions"], replication_factor=1, config=e["config"])
        for t, e in manifest["topics"].items()
        if t not in existing
    ]
    progress(f"generation {number}: creating {len(missing)} of {len(manifest['topics'])} topics")
    topics_create(admin, missing, progress=progress)
    wanted = {key: part for key, part in manifest["partitions"].items() if part["records"]}
    marks = high_water_marks(admin, [split_key(key) for key in wanted])
    done = _already_there(bootstrap, {k: wanted[k] for k in wanted if marks[k]})
    todo = {k: part for k, part in wanted.items() if k not in done}
    skip_used_producer_ids(bootstrap, manifest.get("producer_id_next"), progress)
    progress(
        f"replaying {sum(p['records'] for p in todo.values())} records of {len(todo)} partitions"
    )
    jobs = replay_jobs_of(
        [
            (
                part["records"],
                {
                    "topic": split_key(key)[0],
                    "partition": split_key(key)[1],
                    "paths": [str(root / "segments" / s["file"]) for s in part["segments"]],
                    "counts": [s["records"] for s in part["segments"]],
                },
            )
            for key, part in todo.items()
        ],
        file_format=2,
        workers=workers,
        extra=extra,
    )
    try:
        replayed, total = replay_run(jobs, progress)
    except ReplayFailed as exc:
        raise BackupError(f"replay failed: {exc}") from None
    for key, part in todo.items():
        _compare(key, part, replayed[key])
    done.update({key: replayed[key][2] for key in todo})
    progress("every partition's count and checksums match the backup")
    # The marks as they stand after the read-back: nothing else writes to a broker while it is
    # restored (make run starts its processes after; a retry by hand wants them stopped).
    after = high_water_marks(admin, [split_key(key) for key in wanted])
    manifest = {
        **manifest,
        # Written into the generation before the marker exists: a broker without the marker
        # (the restore died in between) is refused by the next backup, never trusted.
        "broker": secrets.token_hex(8),
        "partitions": {
            key: partition_entry(part["segments"], listed=after[key], next_offset=done[key])
            for key, part in wanted.items()
        },
    }
    generation_write(root, manifest)
    topics_create(admin, [NewTopic(MARKER + manifest["broker"], 1, 1)])
    progress(f"restored generation {number}; the broker is marked {manifest['broker']}")
    return (
        RestoreReport(len(manifest["topics"]), total, time.monotonic() - started),
        float(manifest["created"]),
    )


def _compare(key: str, part: dict[str, Any], found: list[Any]) -> None:
    count, _, _, pieces = found
    if count != part["records"]:
        raise BackupError(f"{key}: {count} records after restore, backup had {part['records']}")
    if pieces != [segment["content_sha256"] for segment in part["segments"]]:
        raise BackupError(f"{key}: content checksum differs after restore")


def _already_there(bootstrap: str | None, parts: dict[str, Any]) -> dict[str, int]:
    """Of partitions that hold records, those holding exactly the backup's (a restore that
    stopped after replaying them): key -> next offset. BackupError for any other content."""
    if not parts:
        return {}
    consumer = backup_consumer(bootstrap)
    found = read_back(
        consumer,
        [
            {
                "topic": split_key(k)[0],
                "partition": split_key(k)[1],
                "counts": [s["records"] for s in p["segments"]],
            }
            for k, p in parts.items()
        ],
        2,
    )
    for key, part in parts.items():
        try:
            _compare(key, part, found[key])
        except BackupError as exc:
            raise BackupError(
                f"{exc}: the partition holds records the backup does not; restore into a fresh "
                "broker (restart the stack)"
            ) from None
    return {key: found[key][2] for key in parts}
