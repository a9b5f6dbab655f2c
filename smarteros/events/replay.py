"""Restoring topics in parallel: the backup's partitions shared out among worker processes
(record_files run as a script), each replaying its share and reading it back; their progress
lines relayed, their counts and checksums gathered for the caller to compare."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smarteros.events import record_files
from smarteros.infra.kafka import client_config

# Bulk reads: whole partitions per fetch instead of librdkafka's interactive defaults.
BULK_CONSUMER_CONFIG: dict[str, Any] = {
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 10_485_760,
    "queued.max.messages.kbytes": 262_144,
    "fetch.wait.max.ms": 10,
}
# Bulk writes: idempotent (a retried batch is not duplicated, order holds per partition), large
# batches compressed on the way (the broker stores them as sent).
BULK_PRODUCER_CONFIG: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 100,
    "batch.size": 4_000_000,
    "batch.num.messages": 100_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}


class ReplayFailed(Exception):
    """A worker failed; the message has its exit status and last lines."""


def replay_jobs(
    directory: Path, manifest: dict[str, Any], *, workers: int, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    """The partitions of a backup directory shared out among the workers."""
    parts = [
        (
            info["records"],
            {"topic": topic, "partition": int(partition), "path": str(directory / info["file"])},
        )
        for topic, entry in manifest["topics"].items()
        for partition, info in entry["files"].items()
    ]
    return replay_jobs_of(parts, file_format=manifest["format"], workers=workers, extra=extra)


def replay_jobs_of(
    parts: list[tuple[int, dict[str, Any]]],
    *,
    file_format: int,
    workers: int,
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """(records, part) pairs shared out among the workers, the largest first to the least
    loaded; a part is what record_files.replay_and_verify takes for one partition."""
    loads = [0] * max(1, workers)
    shares: list[list[dict[str, Any]]] = [[] for _ in loads]
    for records, part in sorted(parts, key=lambda pair: pair[0], reverse=True):
        least = loads.index(min(loads))
        loads[least] += records
        shares[least].append(part)
    consumer_config = client_config(
        **{
            "group.id": f"smarteros-restore-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **BULK_CONSUMER_CONFIG,
            **extra,
        }
    )
    return [
        {
            "name": f"worker {number + 1}/{len(shares)}",
            "format": file_format,
            "producer": client_config(**BULK_PRODUCER_CONFIG, **extra),
            "consumer": consumer_config,
            "partitions": share,
        }
        for number, share in enumerate(shares)
        if share
    ]


def replay_run(
    jobs: list[dict[str, Any]], progress: Callable[[str], None]
) -> tuple[dict[str, list[Any]], int]:
    """Run every job in a worker process of its own; their progress lines are relayed."""
    workers = [_Worker(job, progress) for job in jobs]
    found: dict[str, list[Any]] = {}
    total = 0
    failures = []
    for worker in workers:
        result = worker.result()
        if isinstance(result, str):
            failures.append(result)
            continue
        found.update(result["found"])
        total += result["records"]
    if failures:
        raise ReplayFailed(failures[0])
    return found, total


class _Worker:
    """One replay worker: a fresh interpreter running record_files as a script."""

    def __init__(self, job: dict[str, Any], progress: Callable[[str], None]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, record_files.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.relay = threading.Thread(target=self._relay, args=(progress,), daemon=True)
        self.relay.start()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job))
        self.process.stdin.close()

    def _relay(self, progress: Callable[[str], None]) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            line = line.rstrip()
            self.lines = [*self.lines[-19:], line]
            if not line.startswith("%"):  # librdkafka's own log lines stay out of the progress
                progress(line)

    def result(self) -> dict[str, Any] | str:
        """The worker's result, or a line saying why it failed."""
        assert self.process.stdout is not None
        output = self.process.stdout.read()
        self.process.wait()
        self.relay.join(10)
        if self.process.returncode != 0:
            return f"worker exited {self.process.returncode}: " + " / ".join(self.lines[-3:])
        return json.loads(output)  # type: ignore[no-any-return]
