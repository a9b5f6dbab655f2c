"""One readiness report, read by `/readyz` and by the console's platform health page, so the two
can never disagree: dependencies, outbox backlog, workers' heartbeats, supervised processes and
consumer groups, with the time it was taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smarteros.infra.health import (
    DependencyStatus,
    check_all,
    consumer_groups,
    kafka_backup_check,
    outbox_check,
    supervised_processes,
    worker_heartbeats,
)


@dataclass
class Readiness:
    status: str  # "ready", "degraded" or "unavailable"
    down: list[str]
    degraded: list[str]
    dependencies: list[DependencyStatus]
    outbox: dict[str, Any]
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    consumer_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def details(self) -> dict[str, object]:
        """Everything, as `/readyz` shows it to staff and loopback callers."""
        return {
            "down": self.down,
            "degraded": self.degraded,
            "dependencies": {d.name: d.as_dict() for d in self.dependencies},
            "outbox": self.outbox,
            "workers": self.workers,
            "processes": self.processes,
            "consumer_groups": self.consumer_groups,
        }


def readiness_report() -> Readiness:
    """Check everything once. "unavailable" when a dependency is down; "degraded" (by name) when
    the outbox's backlog is past its thresholds, a worker's heartbeat is stale, a process is in a
    crash loop, a consumer group stalls or `make run`'s broker was not restored from its backup."""
    results = check_all()
    down = [r.name for r in results if not r.ok]
    outbox = outbox_check()
    report = Readiness(
        status="ready",
        down=down,
        degraded=[f"outbox: {outbox['detail']}"] if outbox["status"] == "degraded" else [],
        dependencies=results,
        outbox=outbox,
    )
    if "redis" not in down:  # heartbeats and process states live in Redis, reported above
        report.workers, stale = worker_heartbeats()
        report.processes, looping = supervised_processes()
        report.consumer_groups, stalled = consumer_groups()
        report.degraded += [f"{d.name}: {d.reason}" for d in [*looping, *stale, *stalled]]
    if "kafka" not in down:  # a local stack's broker not restored from its backup
        report.degraded += [f"{d.name}: {d.reason}" for d in kafka_backup_check()]
    report.status = "unavailable" if down else "degraded" if report.degraded else "ready"
    return report
