"""Consumer workers: a handler registry keyed by topic and event type, run in consumer groups.

Offsets are committed only after a message is handled (or dead-lettered), so a crash replays
rather than drops. A message that is not a valid envelope goes to the topic's dead-letter twin.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message
from django.conf import settings

from smarteros.events.envelope import Envelope
from smarteros.infra.kafka import client_config, get_producer

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], None]


@dataclass(frozen=True)
class Registration:
    topic: str
    event_type: str  # "*" for every type on the topic
    group: str
    handler: Handler


_registry: list[Registration] = []


def handles(topic: str, event_type: str = "*", *, group: str) -> Callable[[Handler], Handler]:
    """Register `handler` for events of `event_type` on `topic`, consumed by consumer `group`."""

    def decorator(handler: Handler) -> Handler:
        _registry.append(Registration(topic, event_type, group, handler))
        return handler

    return decorator


def registrations() -> list[Registration]:
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("handlers")
    return list(_registry)


def group_id(group: str) -> str:
    return f"{settings.KAFKA_CONSUMER_GROUP_PREFIX}.{group}"


def dead_letter(message: Message, reason: str) -> None:
    headers = [
        *(message.headers() or []),
        ("dlq.reason", reason.encode()[:1000]),
        ("dlq.topic", (message.topic() or "").encode()),
        ("dlq.partition", str(message.partition()).encode()),
        ("dlq.offset", str(message.offset()).encode()),
    ]
    producer = get_producer()
    producer.produce(
        f"{message.topic()}.dlq", value=message.value(), key=message.key(), headers=headers
    )
    producer.flush(10)


class GroupWorker:
    """Consumes one group's topics and dispatches to its handlers until stopped."""

    def __init__(self, group: str, regs: list[Registration], **overrides: Any) -> None:
        self.group = group
        self.regs = regs
        self.running = True
        self.consumer = Consumer(
            client_config(
                **{
                    "group.id": group_id(group),
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
                    **overrides,
                }
            )
        )

    def topics(self) -> list[str]:
        return sorted({reg.topic for reg in self.regs})

    def handle(self, message: Message) -> None:
        try:
            envelope = Envelope.from_bytes(message.value())
        except Exception as exc:
            dead_letter(message, f"invalid envelope: {exc}")
            return
        matched = [
            r
            for r in self.regs
            if r.topic == message.topic() and r.event_type in ("*", envelope.type)
        ]
        for reg in matched:
            try:
                reg.handler(envelope)
            except Exception as exc:
                log.exception("handler %s failed on %s", reg.handler.__name__, envelope.id)
                dead_letter(message, f"{reg.handler.__name__}: {type(exc).__name__}: {exc}")

    def run(self, *, max_idle_polls: int | None = None) -> None:
        self.consumer.subscribe(self.topics())
        idle = 0
        try:
            while self.running:
                message = self.consumer.poll(1.0)
                if message is None:
                    idle += 1
                    if max_idle_polls is not None and idle >= max_idle_polls:
                        return
                    continue
                idle = 0
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer %s: %s", self.group, error)
                    continue
                self.handle(message)
                self.consumer.commit(message=message, asynchronous=False)
        finally:
            self.consumer.close()

    def stop(self, *args: object) -> None:
        self.running = False


def run_group(group: str) -> None:
    regs = [r for r in registrations() if r.group == group]
    if not regs:
        raise ValueError(f"no handlers registered for consumer group {group!r}")
    worker = GroupWorker(group, regs)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    log.info("consumer group %s on %s", group_id(group), ", ".join(worker.topics()))
    worker.run()
