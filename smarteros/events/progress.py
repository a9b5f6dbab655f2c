"""Each consumer group's lag and last progress, as its members report them, for /readyz.

Every member (one consumer thread of one process) writes, every REPORT_SECONDS, its lag over its
assigned partitions (from the high watermarks its own fetches bring back: no request per topic)
and when it last handled something. A group is stalled when it has lag and has handled nothing
for CONSUMER_GROUP_STALL_SECONDS, or when a member stopped reporting for that long (its loop is
stuck or its thread died) and no other member has taken its partitions since: a stalled group
turns /readyz degraded, naming it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

REPORT_SECONDS = 5.0
# The lag is re-read over every assigned partition, one librdkafka lookup each that is linear in
# the client's topics: with thousands of tenants' partitions assigned (the topic counter's),
# that is done every LAG_PARTITIONS_PER_SECOND-th of a second per partition, up to once a
# minute, while the report itself (the member is alive) still goes out every REPORT_SECONDS.
LAG_PARTITIONS_PER_SECOND = 500
LAG_MAX_SECONDS = 60.0
# An entry nobody refreshed for this long belongs to a process that is gone for good.
FORGET_SECONDS = 600.0


def _key() -> str:
    return f"smarteros:consumers:{settings.KAFKA_CONSUMER_GROUP_PREFIX}:progress"


class GroupProgress:
    """One member's reports. Call `tick(handled)` once per loop of the consumer; `close()` when
    it stops cleanly (a member that stopped is not stalled)."""

    def __init__(self, consumer: Any, group: str) -> None:
        self.consumer = consumer
        self.group = group
        self.field = f"{group}@{socket.gethostname()}:{os.getpid()}"
        self.progress_at = time.time()
        self.reported_at = 0.0
        self.lag = 0
        self.lag_at = 0.0
        self._assigned: set[tuple[str, int]] = set()
        self._committed: dict[tuple[str, int], int] = {}
        self.assigned_at = 0.0  # when its assignment last changed, as its lag reads saw it

    def tick(self, handled: int = 0) -> None:
        now = time.time()
        if handled:
            self.progress_at = now
        if now - self.reported_at < REPORT_SECONDS:
            return
        self.reported_at = now
        try:
            partitions = len(self._assigned)
            due = min(LAG_MAX_SECONDS, max(REPORT_SECONDS, partitions / LAG_PARTITIONS_PER_SECOND))
            if now - self.lag_at >= due:
                self.lag, self.lag_at = self._lag(), now
            if not self.lag:
                self.progress_at = now  # caught up: nothing to handle is not a stall
            record = {
                "group": self.group,
                "lag": self.lag,
                "progress_at": self.progress_at,
                "partitions": len(self._assigned),
                "assigned_at": self.assigned_at,
            }
            get_redis().hset(_key(), self.field, json.dumps({**record, "reported_at": now}))
        except Exception as exc:  # Redis away: /readyz says so; the consumer keeps consuming
            log.debug("progress of %s: %s", self.group, exc)

    def _lag(self) -> int:
        assignment = self.consumer.assignment()
        assigned = {(tp.topic, tp.partition) for tp in assignment}
        if assigned != self._assigned:
            self._assigned, self._committed = assigned, {}
            self.assigned_at = time.time()
        if not assignment:
            return 0
        lag = 0
        unread = []  # fetched, but nothing consumed from them since they were assigned
        for tp in self.consumer.position(assignment):
            low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue  # nothing fetched yet on this partition
            if tp.offset >= 0:
                lag += max(0, high - tp.offset)
            elif high > low:
                unread.append((tp, low, high))
        missing = [tp for tp, _, _ in unread if (tp.topic, tp.partition) not in self._committed]
        if missing:
            # Once per assignment: where such a partition starts is its committed offset.
            for tp in self.consumer.committed(missing, timeout=5):
                self._committed[(tp.topic, tp.partition)] = tp.offset
        for tp, low, high in unread:
            start = self._committed.get((tp.topic, tp.partition), -1)
            lag += max(0, high - (start if start >= 0 else low))
        return lag

    def close(self) -> None:
        try:
            get_redis().hdel(_key(), self.field)
        except Exception as exc:
            log.debug("progress of %s: %s", self.group, exc)


@dataclass(frozen=True)
class GroupStatus:
    group: str
    members: int
    lag: int
    last_progress_seconds: float  # since the group last handled something (or was caught up)
    silent_seconds: float  # since its most silent member last reported
    stalled: str  # why it is stalled; "" when it is not

    def as_dict(self) -> dict[str, object]:
        return {
            "members": self.members,
            "lag": self.lag,
            "last_progress_seconds": round(self.last_progress_seconds, 1),
            "silent_seconds": round(self.silent_seconds, 1),
            "stalled": self.stalled,
        }


def consumer_groups_status() -> list[GroupStatus]:
    """Each reporting group's lag, last progress and, if stalled, why."""
    now = time.time()
    limit = settings.CONSUMER_GROUP_STALL_SECONDS
    quiet = max(limit, 3 * REPORT_SECONDS)
    members: dict[str, dict[Any, dict[str, Any]]] = {}  # group -> Redis field -> report
    gone = []
    for field, raw in get_redis().hgetall(_key()).items():
        entry = json.loads(raw)
        if now - entry["reported_at"] > FORGET_SECONDS:
            gone.append(field)
            continue
        members.setdefault(entry["group"], {})[field] = entry
    statuses = []
    for group, reports in sorted(members.items()):
        live = {f: e for f, e in reports.items() if now - e["reported_at"] <= quiet}
        # A member that stopped reporting holds its partitions until the group takes them
        # from it: a dead process's after the session timeout, a stuck loop's after
        # max.poll.interval.ms. Once a live member's assignment changed after its last report,
        # or if it held none, it is gone (a killed worker, restarted under a new pid), not stuck.
        stuck = {
            f: e
            for f, e in reports.items()
            if f not in live
            and e.get("partitions", 1)
            and not any(m.get("assigned_at", 0) > e["reported_at"] for m in live.values())
        }
        gone.extend(f for f in reports if f not in live and f not in stuck)
        counted = [*live.values(), *stuck.values()]
        lag = sum(e["lag"] for e in counted)
        # Per member: one member stuck on its partitions stalls them while the others run.
        since_progress = max(now - e["progress_at"] for e in counted if e["lag"]) if lag else 0.0
        silent = now - min(e["reported_at"] for e in counted) if counted else 0.0
        stalled = ""
        if stuck:
            stalled = f"a member has not reported for {silent:.0f}s"
        elif since_progress > limit:
            stalled = f"lag {lag}, nothing handled for {since_progress:.0f}s"
        statuses.append(GroupStatus(group, len(counted), lag, since_progress, silent, stalled))
    if gone:
        get_redis().hdel(_key(), *gone)
    return statuses
