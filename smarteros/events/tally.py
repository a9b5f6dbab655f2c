"""Messages published on the tenants' topics, counted where they are published.

The relay (every outbox event), the dead-letter path and the console's replay count what the
broker acknowledged on a tenant's topic, per (minute, tenant, topic), into one Redis hash; the
topic counter (telemetry.counter) drains it into ClickHouse with what it reads on the platform's
few topics. Nothing subscribes to every tenant's topics to count them, so counting costs the same
at rest with 3 tenants or 3,000 (a consumer over every tenant's partitions cost more than a core
at a thousand tenants). A count Redis loses before the counter drains it is lost: a chart's
figure, never an event.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable

from django.conf import settings

from smarteros.events.catalog import topic_tenant
from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

Tally = Counter[tuple[int, str, str]]  # (minute as epoch seconds, tenant, topic) -> messages


def _key() -> str:
    # Per consumer-group prefix, as the subscriptions: stacks and tests sharing a Redis apart.
    return f"smarteros:topic-tally:{settings.KAFKA_CONSUMER_GROUP_PREFIX}"


def published_tally(topics: Iterable[str], *, at: float | None = None) -> None:
    """Count one message on each of `topics` (repeat a topic for more), published at `at`
    (now); platform topics are left to the topic counter. Never raises: Redis away loses the
    count, not the message."""
    minute = int((at if at is not None else time.time()) // 60 * 60)
    counts: Tally = Counter()
    for topic in topics:
        if tenant := topic_tenant(topic):
            counts[(minute, tenant, topic)] += 1
    try:
        _add(counts)
    except Exception as exc:
        log.warning("topic tally: %d message(s) not counted: %s", counts.total(), exc)


def published_drain() -> Tally:
    """Take every count out (atomically: each is drained by one counter only)."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.hgetall(_key())
    pipe.delete(_key())
    fields, _ = pipe.execute()
    drained: Tally = Counter()
    for field, value in fields.items():
        text = field.decode() if isinstance(field, bytes) else str(field)
        minute, tenant, topic = text.split("|", 2)
        drained[(int(minute), tenant, topic)] += int(value)
    return drained


def published_restore(drained: Tally) -> None:
    """Put drained counts back (the counter could not store them)."""
    _add(drained)


def _add(counts: Tally) -> None:
    if not counts:
        return
    pipe = get_redis().pipeline(transaction=False)
    for (minute, tenant, topic), n in counts.items():
        pipe.hincrby(_key(), f"{minute}|{tenant}|{topic}", n)
    pipe.execute()
