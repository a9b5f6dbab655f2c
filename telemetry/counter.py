"""Messages per topic per minute, for the console's topic chart: a consumer group over every
topic that only reads headers, batch-inserted into ClickHouse's topic_messages (summed there).

At-least-once: a batch replayed after a crash is counted twice, which a per-minute chart
tolerates; the exact figures of operation calls come from operation_calls instead.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer
from django.conf import settings

from smarteros.events.consumers import group_id
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import client_config, commit_or_read_again
from telemetry.sink import insert_until_stopped

log = logging.getLogger(__name__)

GROUP = "topic-counter"
EVERY_TOPIC = "^[a-z].*"


def minute_of(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms // 60000 * 60, UTC).replace(tzinfo=None)


class TopicCounter:
    def __init__(self, *, batch_seconds: float = 2.0, **overrides: Any) -> None:
        self.batch_seconds = batch_seconds
        self.running = True
        self.consumer = Consumer(
            client_config(
                **{
                    "group.id": group_id(GROUP),
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
                    "topic.metadata.refresh.interval.ms": 10000,
                    **overrides,
                }
            )
        )

    def run(self) -> None:
        self.consumer.subscribe([EVERY_TOPIC])
        try:
            while self.running:
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
        finally:
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
