"""Worker heartbeats in Redis: each long-running worker (Celery worker, consumers, relay) writes
its last beat every few seconds, and /readyz lists them and flags the stale ones.

A worker is named by SMARTEROS_PROCESS_NAME when a supervisor gives it one (`make run` does:
a restarted process keeps its entry), else by role, host and pid. Entries nobody refreshed for
`FORGET_SECONDS` are dropped, so a worker that is gone for good stops being reported.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

HEARTBEATS_KEY = "smarteros:heartbeats"
FORGET_SECONDS = 600.0


def worker_name(role: str) -> str:
    return (
        os.environ.get("SMARTEROS_PROCESS_NAME") or f"{role}@{socket.gethostname()}:{os.getpid()}"
    )


class Heartbeat:
    """Beats for one worker from a daemon thread until `stop()`; Redis errors are logged, not
    raised: a worker keeps working while Redis is away, and its beat goes stale meanwhile."""

    def __init__(self, role: str, *, interval: float | None = None) -> None:
        self.name = worker_name(role)
        self.role = role
        self.interval = interval or settings.WORKER_HEARTBEAT_SECONDS
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{role}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def beat(self) -> None:
        record = {"role": self.role, "pid": os.getpid(), "host": socket.gethostname()}
        get_redis().hset(HEARTBEATS_KEY, self.name, json.dumps({**record, "at": time.time()}))

    def _run(self) -> None:
        failing = False
        while not self._stopped.is_set():
            try:
                self.beat()
                failing = False
            except Exception as exc:  # Redis away: say so once, keep trying
                if not failing:
                    log.warning("heartbeat %s: %s", self.name, exc)
                failing = True
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        """Stop beating and remove the entry: a worker that stopped cleanly is not stale."""
        self._stopped.set()
        self._thread.join(timeout=self.interval + 1)
        try:
            get_redis().hdel(HEARTBEATS_KEY, self.name)
        except Exception as exc:
            log.warning("heartbeat %s: %s", self.name, exc)


@dataclass(frozen=True)
class WorkerBeat:
    name: str
    role: str
    pid: int | None
    age_seconds: float
    stale: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "pid": self.pid,
            "last_beat_seconds_ago": round(self.age_seconds, 1),
            "status": "stale" if self.stale else "beating",
        }


def worker_beats() -> list[WorkerBeat]:
    """Every worker's last beat, oldest first; entries past FORGET_SECONDS are removed."""
    client = get_redis()
    now = time.time()
    beats, forgotten = [], []
    for name, raw in client.hgetall(HEARTBEATS_KEY).items():
        try:
            record = json.loads(raw)
            age = max(0.0, now - float(record["at"]))
        except (ValueError, KeyError, TypeError):
            forgotten.append(name)
            continue
        if age > FORGET_SECONDS:
            forgotten.append(name)
            continue
        stale = age > settings.WORKER_HEARTBEAT_STALE_SECONDS
        beats.append(WorkerBeat(str(name), record.get("role", "?"), record.get("pid"), age, stale))
    if forgotten:
        client.hdel(HEARTBEATS_KEY, *forgotten)
    return sorted(beats, key=lambda beat: -beat.age_seconds)
