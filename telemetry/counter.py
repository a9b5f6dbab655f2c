"""Messages per topic per minute, for the console's topic charts, into ClickHouse's
topic_messages (summed there): a consumer group over the platform's few catalog topics that only
reads headers, plus the tenants' topics' counts taken where they were published
(smarteros.events.tally: the relay, the dead-letter path, the console's replay), drained from
Redis each batch. No consumer reads every tenant's topics to count them.

At-least-once on the platform's topics: a batch replayed after a crash is counted twice, which a
per-minute chart tolerates; the exact figures of operation calls come from operation_calls.
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

from smarteros.events.catalog import platform_topics
from smarteros.events.consumers import tenant_consumer_config
from smarteros.events.progress import GroupProgress
from smarteros.events.subscriptions import ExplicitSubscription
from smarteros.events.tally import Tally, published_drain, published_restore
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import commit_or_read_again
from telemetry.sink import insert_until_stopped

log = logging.getLogger(__name__)

GROUP = "topic-counter"


def counted_topics(slugs: Iterable[str]) -> list[str]:
    """The topics the counter reads: the platform's (tenants' topics are counted where they are
    published, whatever `slugs` the directory holds)."""
    return [spec.name for spec in platform_topics()]


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
                read = counts.total()
                published = self._drain()
                for (minute, tenant, topic), n in published.items():
                    counts[(minute_of(minute * 1000), tenant, topic)] += n
                if counts:
                    if not self._insert(counts):
                        self._restore(published)
                        log.warning(
                            "topic counter: stopping with uncounted messages; "
                            "they are counted when a counter next runs"
                        )
                        return  # offsets stay uncommitted
                    if read:
                        commit_or_read_again(self.consumer, who="topic counter")
                    progress.tick(counts.total())
        finally:
            subscription.close()
            if sys.exc_info()[0] is None:  # a member that failed must show as stalled
                progress.close()
            self.consumer.close()

    def _drain(self) -> Tally:
        try:
            return published_drain()
        except Exception as exc:  # Redis away: the counts wait there for the next batch
            log.debug("topic counter: published counts not drained: %s", exc)
            return Counter()

    def _restore(self, published: Tally) -> None:
        try:
            published_restore(published)
        except Exception as exc:
            log.warning("topic counter: %d published count(s) lost: %s", published.total(), exc)

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
