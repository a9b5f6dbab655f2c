"""Pending dead letters: the events a consumer group is retrying before it dead-letters them.

While a member retries an event (after a failed attempt, before the next), it keeps one small
entry per event in a Redis hash of the event's tenant, under the field
`{group}|{topic}|{partition}|{offset}`: the event's type and id, attempt n of N, the last error
(credentials scrubbed before it leaves the process) and when the next attempt is due. The entry
goes when the event is handled, dead-lettered or handed back to the worker (a dependency down).
An event handled at its first attempt costs no Redis call.

Bounded: a member retries one event at a time, so a tenant holds at most one entry per group and
partition. A member that crashed leaves its entries behind: each carries its own expiry (the next
attempt's time plus a margin for that attempt to run) and readers skip and delete expired ones;
the hash itself expires too when nobody writes to it. Best effort: with Redis away the console
loses this view, never the consumer its progress (logged at debug, then not tried for a while).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from smarteros.events.catalog import topic_tenant
from smarteros.infra.redis import get_redis
from smarteros.scrub import scrub_text

log = logging.getLogger(__name__)

# Seconds an entry outlives the time its next attempt is due, at least: that attempt's run.
MIN_MARGIN_SECONDS = 60.0
MAX_ERROR_CHARS = 500
# After Redis failed, members stop trying it for this long: a Redis that hangs must not add its
# timeout to every retry of every event.
QUIET_SECONDS = 10.0
PLATFORM = "-platform"  # the hash of platform topics' events (no slug starts with "-")

_quiet_until = 0.0


def _key(owner: str | None) -> str:
    prefix = settings.KAFKA_CONSUMER_GROUP_PREFIX
    return f"smarteros:consumers:{prefix}:pending:{owner or PLATFORM}"


@dataclass(frozen=True)
class PendingDeadLetter:
    """One event a group is retrying."""

    topic: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    group: str
    attempt: int  # attempts failed so far
    attempts: int  # attempts in all before it is dead-lettered
    error: str  # the last attempt's, credentials scrubbed
    failed_at: float  # epoch seconds
    next_at: float  # when the next attempt is due, epoch seconds
    expires_at: float

    @property
    def next_at_time(self) -> datetime:
        return datetime.fromtimestamp(self.next_at, UTC)

    def due_in(self, now: float | None = None) -> float:
        """Seconds until the next attempt (0 when it is due or running)."""
        return max(0.0, self.next_at - (time.time() if now is None else now))


class PendingRetry:
    """The pending entry of one event while one member retries it: `failed()` after each
    attempt that is followed by another, `clear()` when the retries end (see pending_retry)."""

    def __init__(
        self,
        *,
        group: str,
        topic: str,
        partition: int,
        offset: int,
        event_id: str,
        event_type: str,
        attempts: int,
    ) -> None:
        self.key = _key(topic_tenant(topic))
        self.field = f"{group}|{topic}|{partition}|{offset}"
        self.entry: dict[str, Any] = {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "event_id": event_id,
            "event_type": event_type,
            "group": group,
            "attempts": attempts,
        }
        self.written = False
        self.started = time.time()

    def failed(self, *, attempt: int, error: str, delay: float) -> None:
        """Attempt `attempt` (1-based) failed with `error`; the next is due in `delay` seconds."""
        now = time.time()
        took, self.started = now - self.started, now + delay
        next_at = now + delay
        margin = max(MIN_MARGIN_SECONDS, 3 * took)
        entry = {
            **self.entry,
            "attempt": attempt,
            "error": scrub_text(error[: 4 * MAX_ERROR_CHARS])[:MAX_ERROR_CHARS],
            "failed_at": now,
            "next_at": next_at,
            "expires_at": next_at + margin,
        }

        def write(redis: Any) -> None:
            pipe = redis.pipeline(transaction=False)
            pipe.hset(self.key, self.field, json.dumps(entry))
            pipe.expire(self.key, int(delay + margin) + 1)
            pipe.execute()

        self.written = _best_effort(write) or self.written

    def clear(self) -> None:
        """The retries ended (handled, dead-lettered, or the worker took the event back)."""
        if self.written:
            _best_effort(lambda redis: redis.hdel(self.key, self.field))
            self.written = False


@contextmanager
def pending_retry(
    *,
    group: str,
    topic: str,
    partition: int,
    offset: int,
    event_id: str,
    event_type: str,
    attempts: int,
) -> Iterator[PendingRetry]:
    """The pending entry of an event for the length of its retries: whatever ends them (success,
    dead letter, an exception), the entry leaves the pending list."""
    pending = PendingRetry(
        group=group,
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=event_id,
        event_type=event_type,
        attempts=attempts,
    )
    try:
        yield pending
    finally:
        pending.clear()


def _best_effort(work: Any) -> bool:
    """Run `work(redis)` unless Redis failed lately; True if it ran."""
    global _quiet_until
    if time.monotonic() < _quiet_until:
        return False
    try:
        work(get_redis())
    except Exception as exc:  # Redis away: the console loses the view; consuming goes on
        _quiet_until = time.monotonic() + QUIET_SECONDS
        log.debug("pending dead letters: %s", exc)
        return False
    return True


def pending_dead_letters(*, tenant_slug: str | None, topic: str) -> list[PendingDeadLetter]:
    """The events of `topic` that consumer groups are retrying now, soonest attempt first;
    `tenant_slug` names the tenant whose entries are read (None: the platform's) and must be the
    topic's own. Only that tenant's hash is read. Raises redis errors: the caller says the list
    is unavailable."""
    if topic_tenant(topic) != tenant_slug:
        return []
    key = _key(tenant_slug)
    redis = get_redis()
    now = time.time()
    found, expired = [], []
    for field, raw in redis.hgetall(key).items():
        try:
            entry = PendingDeadLetter(**json.loads(raw))
        except (ValueError, TypeError):
            expired.append(field)
            continue
        if entry.expires_at < now:
            expired.append(field)
        elif entry.topic == topic:
            found.append(entry)
    if expired:
        redis.hdel(key, *expired)
    return sorted(found, key=lambda e: (e.next_at, e.partition, e.offset))
