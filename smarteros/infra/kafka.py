"""Kafka API (Redpanda in production, any Kafka-API broker locally) through confluent-kafka."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from django.conf import settings

log = logging.getLogger(__name__)


def client_config(**overrides: Any) -> dict[str, Any]:
    """Base librdkafka config: bootstrap servers plus KAFKA_CLIENT_CONFIG extras."""
    config: dict[str, Any] = {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}
    for item in settings.KAFKA_CLIENT_CONFIG.split(","):
        if "=" in item:
            key, _, value = item.partition("=")
            config[key.strip()] = value.strip()
    config.update(overrides)
    return config


def admin_client(**overrides: Any) -> AdminClient:
    # An admin handle is a producer to librdkafka, which lets a metadata request for one topic
    # create it (the local broker does): asking whether a dead-letter topic exists must not.
    return AdminClient(client_config(**{"allow.auto.create.topics": False, **overrides}))


def _idempotent_config(linger_ms: int) -> dict[str, Any]:
    from smarteros.events.catalog import largest_message_bytes

    config = client_config(
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            # Keep retrying while the broker is away instead of dropping after 5 minutes.
            "message.timeout.ms": 0,
            "compression.type": "lz4",
        }
    )
    # The client refuses a message over this itself: as large as the catalog allows (a dead
    # letter included) unless KAFKA_CLIENT_CONFIG says otherwise.
    config.setdefault("message.max.bytes", largest_message_bytes())
    return config


def _idempotent_producer(linger_ms: int) -> Producer:
    return Producer(_idempotent_config(linger_ms))


@functools.cache
def get_producer() -> Producer:
    """The process-wide idempotent producer: ordered per partition, no duplicates on retry."""
    return _idempotent_producer(5)


@functools.cache
def get_telemetry_producer() -> Producer:
    """The producer for records that describe calls rather than change state (telemetry,
    agent actions). Same guarantees, longer batching: a busy process wakes the broker a few
    times a second instead of on every call, which is most of what a record costs."""
    config = _idempotent_config(settings.KAFKA_TELEMETRY_LINGER_MS)
    # Bounded, unlike the others: telemetry/recording.py sends what times out again through a
    # new producer, since this one may be wedged (see KAFKA_TELEMETRY_RESEND_MS).
    return Producer({**config, "message.timeout.ms": settings.KAFKA_TELEMETRY_RESEND_MS})


# A dead letter the broker has not acknowledged within this fails, so the consumer retries it
# rather than waiting on it forever.
DEAD_LETTER_TIMEOUT_MS = 15_000


@functools.cache
def get_dead_letter_producer() -> Producer:
    """The producer of dead letters: idempotent like the others, but a write that the broker
    does not acknowledge in DEAD_LETTER_TIMEOUT_MS fails, so the consumer keeps its offset."""
    return Producer({**_idempotent_config(0), "message.timeout.ms": DEAD_LETTER_TIMEOUT_MS})


def forget_producers() -> None:
    """Drop the process's producers (after KAFKA_BOOTSTRAP_SERVERS changed, in tests)."""
    get_producer.cache_clear()
    get_telemetry_producer.cache_clear()
    get_dead_letter_producer.cache_clear()


def check(timeout: float) -> str:
    """The broker answers a metadata request for one platform topic. Not for every topic: that
    answer grows with the tenants (0.7-2 s at 250 tenants on the local broker, past the
    readiness timeout), this one does not."""
    from smarteros.events.catalog import platform_topics

    # A consumer handle that never joins its group: asking for a missing topic creates nothing.
    consumer = Consumer(
        client_config(
            **{
                "group.id": f"{settings.KAFKA_CONSUMER_GROUP_PREFIX}.readiness",
                "allow.auto.create.topics": False,
                "socket.connection.setup.timeout.ms": int(timeout * 1000),
            }
        )
    )
    try:
        metadata = consumer.list_topics(topic=platform_topics()[0].name, timeout=timeout)
    finally:
        consumer.close()
    return f"{len(metadata.brokers)} broker(s)"


def commit_or_read_again(consumer: Consumer, *, who: str) -> bool:
    """Commit the consumer's position after a batch; False if the broker cannot take it now
    (it is away, or the group lost its assignment while it was). The consume loop goes on: the
    uncommitted batch is read again by whoever is assigned its partitions, so this suits only
    consumers whose writes tolerate a second reading."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        log.warning("%s: offsets not committed (%s); the batch will be read again", who, exc)
        return False
    return True


# Creating topics in batches: a broker takes a while per partition (Tansu ~0.3 ms in memory, a
# replicated cluster far more), and one request for thousands of topics outlives any timeout.
CREATE_BATCH_SECONDS = 5.0  # aim for requests this long: short enough to retry, few enough
CREATE_FIRST_BATCH = 100  # partitions in the first request, before the broker's pace is known
CREATE_ATTEMPTS = 4  # a batch that times out is split and retried this many times


def create_timeout(partitions: int) -> float:
    """How long a CreateTopics request for `partitions` partitions may take: a floor for the
    round trip plus a generous allowance per partition."""
    return 15.0 + 0.05 * partitions


def topics_create(
    admin: AdminClient,
    topics: list[Any],
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, bool]:
    """Create `topics` (NewTopic) in batches sized to the broker's measured pace, each with a
    timeout derived from its size; returns each name with True if this call created it, False
    if it existed already. A topic that exists already counts as done, so a run that stopped
    half-way is resumed by calling again with the same list. A batch that times out is split and retried; what still fails raises KafkaException.
    `progress(line)` hears after each batch how far it got."""
    say = progress or (lambda line: None)
    pending = list(reversed(topics))  # taken from the end: popping the front is quadratic
    total, done = len(pending), 0
    created: dict[str, bool] = {}
    budget = CREATE_FIRST_BATCH  # partitions per request
    attempts = 0
    while pending:
        batch: list[Any] = []
        size = 0
        while pending and (not batch or size + pending[-1].num_partitions <= budget):
            topic = pending.pop()
            batch.append(topic)
            size += topic.num_partitions
        started = time.monotonic()
        timeout = create_timeout(size)
        futures = admin.create_topics(batch, operation_timeout=timeout, request_timeout=timeout + 5)
        retry = []
        for topic in batch:
            try:
                futures[topic.topic].result()
                created[topic.topic] = True
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() == "TOPIC_ALREADY_EXISTS":
                    created[topic.topic] = False
                    continue
                if error.code() not in _RETRIABLE_CREATE or attempts >= CREATE_ATTEMPTS:
                    raise
                retry.append(topic)
        elapsed = time.monotonic() - started
        done += len(batch) - len(retry)
        if retry:
            attempts += 1
            budget = max(1, size // 2)
            pending.extend(reversed(retry))
            say(f"{done}/{total} topics; {len(retry)} timed out, retrying {budget} at a time")
            continue
        attempts = 0
        # Next request sized so it takes about CREATE_BATCH_SECONDS at the pace just seen.
        pace = max(elapsed, 0.001) / max(size, 1)
        budget = max(1, min(budget * 4, int(CREATE_BATCH_SECONDS / pace)))
        say(f"{done}/{total} topics created or present")
    return created


_RETRIABLE_CREATE = {KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError._TRANSPORT}
