"""Readiness of every dependency, checked concurrently with a short timeout each."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from smarteros.infra import clickhouse, kafka, postgres, redis, vault

CHECKS: dict[str, Callable[[float], str]] = {
    "postgres": postgres.check,
    "redis": redis.check,
    "kafka": kafka.check,
    "vault": vault.check,
    "clickhouse": clickhouse.check,
}


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    ok: bool
    latency_ms: float
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "up" if self.ok else "down",
            "latency_ms": round(self.latency_ms, 1),
            "detail": self.detail,
        }


def _timed(name: str, check: Callable[[float], str], timeout: float) -> DependencyStatus:
    started = time.perf_counter()
    try:
        detail = check(timeout)
        ok = True
    except Exception as exc:  # every failure is a "down" with its reason
        detail = f"{type(exc).__name__}: {exc}"[:300]
        ok = False
    return DependencyStatus(name, ok, (time.perf_counter() - started) * 1000, detail)


def check_all(timeout: float = 2.0) -> list[DependencyStatus]:
    """Every dependency's status; a check that overruns its timeout counts as down."""
    pool = ThreadPoolExecutor(max_workers=len(CHECKS))
    futures = {name: pool.submit(_timed, name, fn, timeout) for name, fn in CHECKS.items()}
    results = []
    for name, future in futures.items():
        try:
            results.append(future.result(timeout=timeout + 1.0))
        except FutureTimeout:
            results.append(DependencyStatus(name, False, (timeout + 1.0) * 1000, "timed out"))
    # A check stuck past its timeout must not hold the response; its thread ends on its own.
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def outbox_check() -> dict[str, object]:
    """The outbox's backlog for /readyz: "degraded" with the reasons past the OUTBOX_DEGRADED_*
    thresholds (events wait too long, or some are set aside), else "ok"; "unknown" if the
    database does not answer (the postgres check says why)."""
    from smarteros.events.outbox import outbox_backlog

    try:
        backlog = outbox_backlog()
    except Exception as exc:
        return {"status": "unknown", "detail": f"{type(exc).__name__}"}
    problems = backlog.problems()
    return {
        "status": "degraded" if problems else "ok",
        "unsent": backlog.unsent,
        "oldest_unsent_age_seconds": round(backlog.oldest_unsent_age_seconds, 1),
        "set_aside": backlog.set_aside,
        "detail": "; ".join(problems),
    }


@dataclass(frozen=True)
class Degradation:
    """Something that works, but not as it should: /readyz stays 200 and names it."""

    name: str
    reason: str


def worker_heartbeats() -> tuple[dict[str, dict[str, object]], list[Degradation]]:
    """Every worker's last beat, and a degradation for each stale one."""
    from smarteros.infra.heartbeat import worker_beats

    beats = worker_beats()
    listed = {beat.name: beat.as_dict() for beat in beats}
    stale = [
        Degradation(beat.name, f"no heartbeat for {beat.age_seconds:.0f}s")
        for beat in beats
        if beat.stale
    ]
    return listed, stale


def supervised_processes() -> tuple[dict[str, dict[str, Any]], list[Degradation]]:
    """The local supervisor's processes (`make run`), and a degradation per crash loop."""
    from smarteros.infra.supervision import supervisor_status

    processes = supervisor_status()
    looping = [
        Degradation(
            name,
            f"crash loop: {state['exits_last_minute']} exits in the last minute, "
            f"last {state['last_exit']}",
        )
        for name, state in processes.items()
        if state.get("state") == "crash-loop"
    ]
    return processes, looping


def consumer_groups() -> tuple[dict[str, dict[str, object]], list[Degradation]]:
    """Each consumer group's lag and last progress, and a degradation for each stalled one."""
    from smarteros.events.progress import consumer_groups_status

    statuses = consumer_groups_status()
    listed = {status.group: status.as_dict() for status in statuses}
    stalled = [
        Degradation(f"consumer group {s.group}", f"stalled: {s.stalled}")
        for s in statuses
        if s.stalled
    ]
    return listed, stalled


def kafka_backup_check() -> list[Degradation]:
    """Under `make run` (which names its backup folder in SMARTEROS_KAFKA_BACKUP_DIR): a
    degradation when its broker was not restored from the newest backup generation, naming
    the restore's log and the command that retries it."""
    import os
    from pathlib import Path

    from smarteros.events.backup_generations import generations_broker_problem

    folder = os.environ.get("SMARTEROS_KAFKA_BACKUP_DIR")
    if not folder:
        return []
    try:
        problem = generations_broker_problem(
            Path(folder), restore_log=os.environ.get("SMARTEROS_KAFKA_RESTORE_LOG", "")
        )
    except Exception as exc:  # the kafka check above reports a broker that does not answer
        problem = f"cannot tell whether the broker was restored ({type(exc).__name__}: {exc})"
    return [Degradation("kafka backup", problem)] if problem else []
