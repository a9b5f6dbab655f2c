"""Messages per topic per minute, for the console's topic chart: a consumer group over every
catalog topic (the platform's, and those of every tenant in the directory and the dead-letter
topics that exist, subscribed by name so a new tenant is counted within seconds) that only reads
headers, batch-inserted into ClickHouse's topic_messages (summed there).

At-least-once: a batch replayed after a crash is counted twice, which a per-minute chart
tolerates; the exact figures of operation calls come from operation_calls instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer

from smarteros.events.catalog import platform_topics, tenant_topics, topic_tenant
from smarteros.events.consumers import tenant_consumer_config
from smarteros.events.progress import GroupProgress
from smarteros.events.subscriptions import (
    ExplicitSubscription,
    dead_letter_topics,
    dead_letter_topics_add,
)
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import admin_client, commit_or_read_again
from telemetry.sink import insert_until_stopped

log = logging.getLogger(__name__)

GROUP = "topic-counter"


def counted_topics(slugs: Iterable[str]) -> list[str]:
    """The platform's catalog topics, those of the tenants `slugs`, and their dead-letter topics
    that exist (recorded as their first dead letter creates them, which moves the directory:
    the counter then reads the new one from its start)."""
    slugs = set(slugs)
    names = [spec.name for spec in platform_topics()]
    per_tenant = [spec.name for spec in tenant_topics("{slug}")]
    names += [name.replace("{slug}", slug, 1) for slug in slugs for name in per_tenant]
    return names + sorted(t for t in dead_letter_topics() if topic_tenant(t) in slugs)


def _dead_letter_topics_seed() -> None:
    """Record the tenants' dead-letter topics the broker holds (one listing when the counter
    starts): a restored broker has them, a fresh Redis does not know them."""
    try:
        listed = admin_client().list_topics(timeout=30).topics
        dead_letter_topics_add(t for t in listed if t.endswith(".dlq") and topic_tenant(t))
    except Exception as exc:  # counted from their next dead letter instead
        log.warning("topic counter: dead-letter topics not listed: %s", exc)


def minute_of(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms // 60000 * 60, UTC).replace(tzinfo=None)


class TopicCounter:
    def __init__(self, *, batch_seconds: float = 2.0, **overrides: Any) -> None:
        self.batch_seconds = batch_seconds
        self.running = True
        # Per-minute counts wait a few seconds gladly: an idle fetch over every tenant's
        # partitions every 5 s, not twice a second, for the client and the broker alike.
        overrides = {"fetch.wait.max.ms": 5000, **overrides}
        self.consumer = Consumer(tenant_consumer_config(GROUP, **overrides))
        self.subscription = ExplicitSubscription(self.consumer, GROUP, counted_topics)

    def run(self) -> None:
        subscription = self.subscription
        _dead_letter_topics_seed()
        subscription.start()
        progress = GroupProgress(self.consumer, GROUP)
        try:
            while self.running:
                subscription.refresh()
                progress.tick()
                counts: Counter[tuple[datetime, str, str]] = Counter()
                deadline = time.monotonic() + self.batch_seconds
                while self.running and time.monotonic() < deadline:
                    for message in self.consumer.consume(num_messages=5000, timeout=0.5):
                        if message.error():
                            continue
                        headers = dict(message.headers() or [])
                        raw = headers.get("tenant") or b""
                        tenant = raw.decode() if isinstance(raw, bytes) else str(raw)
                        _, timestamp = message.timestamp()
                        counts[
                            (
                                minute_of(timestamp or int(time.time() * 1000)),
                                tenant,
                                message.topic() or "",
                            )
                        ] += 1
                if counts:
                    if not self._insert(counts):
                        log.warning(
                            "topic counter: stopping with uncounted messages; "
                            "they are counted when a counter next runs"
                        )
                        return  # offsets stay uncommitted
                    commit_or_read_again(self.consumer, who="topic counter")
                    progress.tick(sum(counts.values()))
        finally:
            subscription.close()
            if sys.exc_info()[0] is None:  # a member that failed must show as stalled
                progress.close()
            self.consumer.close()

    def _insert(self, counts: Counter[tuple[datetime, str, str]]) -> bool:
        rows = [
            {"minute": m, "tenant": t, "topic": topic, "messages": n}
            for (m, t, topic), n in counts.items()
        ]

        def attempt() -> None:
            client = clickhouse_client(timeout=5)
            try:
                client.execute(
                    "INSERT INTO topic_messages (minute, tenant, topic, messages) VALUES", rows
                )
            finally:
                client.disconnect()

        return insert_until_stopped(attempt, running=lambda: self.running, who="topic counter")

    def stop(self, *args: object) -> None:
        self.running = False
