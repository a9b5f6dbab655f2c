"""A tenant's dead letters: list them, and replay them through the outbox.

A replay keeps each event's id. The consumer groups that handled the event skip it (their
processed marks dedupe it); the group that dead-lettered it has no mark, so it runs again. A
new id would make every group run it twice. Progress is a consumer group of its own
(`{prefix}.dlq-replay`) committed after the outbox transaction, so a dead letter is replayed
once, and a replay that fails half-way re-queues the rest the next time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from smarteros.events.catalog import CATALOG
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit_many
from smarteros.infra.kafka import admin_client, client_config

REPLAY_GROUP = "dlq-replay"


class UnknownDeadLetterTopic(ValueError):
    pass


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    event_id: str
    event_type: str
    group: str
    reason: str
    replayed: bool


@dataclass
class Replay:
    requeued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not an envelope: replaying cannot help


def _topics(slug: str, topic: str) -> tuple[str, str]:
    names = {spec.name for spec in CATALOG if spec.per_tenant}
    if topic not in names:
        raise UnknownDeadLetterTopic(
            f"unknown tenant topic {topic!r}; one of: {', '.join(sorted(names))}"
        )
    return f"{slug}.{topic}", f"{slug}.{topic}.dlq"


def _consumer(group: str) -> Consumer:
    from smarteros.events.consumers import group_id

    return Consumer(
        client_config(
            **{
                "group.id": group_id(group),
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
    )


def _read(consumer: Consumer, dlq: str, limit: int | None) -> Iterator[Message]:
    """The dead letters after the replay group's committed offsets, in order, up to `limit`."""
    metadata = admin_client().list_topics(dlq, timeout=10).topics.get(dlq)
    if metadata is None or metadata.error is not None:
        return
    partitions = [TopicPartition(dlq, p) for p in sorted(metadata.partitions)]
    committed = consumer.committed(partitions, timeout=10)
    consumer.assign(
        [TopicPartition(dlq, tp.partition, max(tp.offset, OFFSET_BEGINNING)) for tp in committed]
    )
    open_partitions, count = len(partitions), 0
    while open_partitions and (limit is None or count < limit):
        message = consumer.poll(5)
        if message is None:
            return
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                open_partitions -= 1
                continue
            raise RuntimeError(f"reading {dlq}: {error}")
        count += 1
        yield message


def _header(message: Message, name: str) -> str:
    value = dict(message.headers() or []).get(name) or b""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _envelope(message: Message) -> Envelope | None:
    try:
        return Envelope.from_bytes(message.value())
    except ValueError:
        return None


def dead_letters_list(*, slug: str, topic: str, limit: int | None = None) -> list[DeadLetter]:
    """The dead letters of tenant `slug`'s `topic` (a catalog name such as
    "n8n.automation.result"), oldest first, each marked whether a replay re-queued it."""
    _, dlq = _topics(slug, topic)
    consumer = _consumer(f"dlq-list-{slug}")  # never commits: reads from the beginning
    replay = _consumer(REPLAY_GROUP)
    try:
        done = {tp.partition: tp.offset for tp in replay.committed(_partitions(dlq), timeout=10)}
        letters = []
        for message in _read(consumer, dlq, limit):
            envelope = _envelope(message)
            letters.append(
                DeadLetter(
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                    event_id=envelope.id if envelope else "",
                    event_type=envelope.type if envelope else "",
                    group=_header(message, "dlq.group"),
                    reason=_header(message, "dlq.reason"),
                    replayed=(message.offset() or 0) < done.get(message.partition() or 0, -1),
                )
            )
        return letters
    finally:
        consumer.close()
        replay.close()


def _partitions(topic: str) -> list[TopicPartition]:
    metadata = admin_client().list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]


def dead_letters_replay(*, slug: str, topic: str, limit: int | None = None) -> Replay:
    """Re-queue tenant `slug`'s dead letters of `topic` not replayed before (up to `limit`)
    through the outbox, keeping their event ids; returns what was re-queued and what was
    skipped (a message that is not an envelope would only be dead-lettered again)."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped, tenant_scope

    target, dlq = _topics(slug, topic)
    with dangerously_unscoped():
        tenant = Tenant.objects.get(slug=slug)
    consumer = _consumer(REPLAY_GROUP)
    result = Replay()
    try:
        messages = list(_read(consumer, dlq, limit))
        events: dict[str, tuple[str, Envelope, str]] = {}
        for message in messages:
            envelope = _envelope(message)
            where = f"{dlq}[{message.partition()}]@{message.offset()}"
            if envelope is None or envelope.tenant != slug:
                result.skipped.append(where)
                continue
            key = (message.key() or b"").decode(errors="replace")
            events.setdefault(envelope.id, (target, envelope, key))  # one per id, across groups
        if events:
            with tenant_scope(tenant.pk):
                outbox_emit_many(list(events.values()), tenant_id=tenant.pk, requeue=True)
        result.requeued = list(events)
        if messages:
            last: dict[int, int] = {}
            for message in messages:
                last[message.partition() or 0] = (message.offset() or 0) + 1
            consumer.commit(
                offsets=[TopicPartition(dlq, p, offset) for p, offset in last.items()],
                asynchronous=False,
            )
        return result
    finally:
        consumer.close()
