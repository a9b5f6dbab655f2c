"""`dr_backup DIR`: every part of the platform's state into DIR, then the top manifest last (a
directory without a complete manifest is not a backup)."""

from __future__ import annotations

import platform
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka
from django.conf import settings

from smarteros.dr.clickhouse import clickhouse_backup
from smarteros.dr.common import (
    FORMAT_VERSION,
    MANIFEST,
    DrError,
    Progress,
    Timer,
    files_checksums,
    manifest_write,
)
from smarteros.dr.postgres import postgres_backup
from smarteros.dr.vault import vault_backup
from smarteros.events.backup import BackupError, topics_backup

KAFKA_FOLDER = "kafka"


def dr_backup(directory: Path, *, clickhouse_http: str, progress: Progress) -> dict[str, Any]:
    """Back up PostgreSQL, Kafka, ClickHouse and Vault into the empty (or new) `directory`."""
    if directory.exists() and any(directory.iterdir()):
        raise DrError(f"{directory} is not empty; back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "complete": False,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0],
        },
        "seconds": {},
    }
    manifest_write(directory, manifest)
    # The order keeps references pointing backwards: Vault after PostgreSQL (a credential in the
    # dump is always under a key the snapshot has), Kafka last (every event an outbox row in the
    # dump says was sent is on its topic; unsent rows are sent again by the relay after a
    # restore, and consumers handle each event id once).
    steps = [
        (
            "postgres",
            lambda: postgres_backup(
                directory, url=settings.DATABASE_PLATFORM_URL, progress=progress
            ),
        ),
        ("vault", lambda: vault_backup(directory, progress=progress)),
        (
            "clickhouse",
            lambda: clickhouse_backup(directory, http=clickhouse_http, progress=progress),
        ),
        ("kafka", lambda: _kafka_backup(directory, progress)),
    ]
    for name, step in steps:
        started = time.monotonic()
        progress(f"{name}: backing up")
        manifest[name] = step()
        manifest["seconds"][name] = round(time.monotonic() - started, 2)
        if "server_version" in manifest[name]:
            manifest["versions"][name] = manifest[name]["server_version"]
    manifest["files"] = files_checksums(directory)
    manifest["bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    manifest["seconds"]["total"] = round(timer.seconds, 2)
    manifest["complete"] = True
    manifest_write(directory, manifest)
    progress(f"manifest: {directory / MANIFEST}")
    return manifest


def _kafka_backup(directory: Path, progress: Progress) -> dict[str, Any]:
    target = directory / KAFKA_FOLDER
    try:
        report = topics_backup(target, progress=lambda line: progress(f"kafka: {line}"))
    except BackupError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise DrError(f"kafka: {exc}") from None
    return {"folder": KAFKA_FOLDER, "topics": report.topics, "records": report.records}
