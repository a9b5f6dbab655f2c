"""What a consumer does with a failure: dead-letter what is the event's own fault (only once the
broker acknowledged the dead letter), and retry everything else once the dependency is back."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException, Message
from django.db import InterfaceError, OperationalError

from smarteros.events.tally import published_tally
from smarteros.infra.kafka import get_dead_letter_producer

log = logging.getLogger(__name__)

# Dead-letter topics this process knows exist (created by it or found already there).
_known_dead_letter_topics: set[str] = set()


class DeadLetterFailed(Exception):
    """The broker did not acknowledge a dead letter: the offset must not move past it."""


def is_infrastructure_error(exc: BaseException) -> bool:
    """True when `exc` says a dependency is down (database, broker, Vault) rather than that the
    event is at fault: the event is retried once the dependency is back, never dead-lettered."""
    import psycopg

    from smarteros.errors import DependencyUnavailable

    return isinstance(
        exc,
        OperationalError
        | InterfaceError
        | psycopg.OperationalError
        | psycopg.InterfaceError
        | DependencyUnavailable
        | DeadLetterFailed
        | KafkaException,
    )


def dead_letter(message: Message, reason: str, *, group: str = "") -> None:
    """Park `message` on its topic's dead-letter twin with the reason in its headers, and wait
    for the broker's acknowledgement. Raises DeadLetterFailed if it does not come: the caller
    must then not commit the message's offset (it is read and dead-lettered again)."""
    headers = [
        *(message.headers() or []),
        ("dlq.reason", reason.encode()[:2000]),
        ("dlq.group", group.encode()),
        ("dlq.topic", (message.topic() or "").encode()),
        ("dlq.partition", str(message.partition()).encode()),
        ("dlq.offset", str(message.offset()).encode()),
    ]
    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
    target = f"{message.topic()}.dlq"
    try:
        dead_letter_topic_ensure(target)
    except KafkaException as exc:
        raise DeadLetterFailed(f"dead letter of {where}: {target} not created: {exc}") from exc
    producer = get_dead_letter_producer()
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    try:
        producer.produce(
            target,
            value=message.value(),
            key=message.key(),
            headers=headers,
            on_delivery=on_delivery,
        )
        remaining = producer.flush(30)
    except (KafkaException, BufferError) as exc:
        errors.append(str(exc))
        remaining = 0
    if remaining or errors:
        producer.purge()  # what is still queued would be retried and might land twice
        get_dead_letter_producer.cache_clear()  # the next attempt starts from a fresh one
        _known_dead_letter_topics.discard(target)  # a broker that came back empty lacks it
        raise DeadLetterFailed(
            f"dead letter of {where} not acknowledged: {errors[:1] or 'timed out'}"
        )
    published_tally([target])
    log.warning("dead-lettered %s: %s", where, reason)


def dead_letter_topic_ensure(name: str) -> None:
    """Create the dead-letter topic `name` with its catalog configs unless this process knows it
    exists: a tenant's are created on its first dead letter, not at provisioning. One creation
    request the first time per process (an existing topic is left as it is); then nothing."""
    from smarteros.events.catalog import spec_for
    from smarteros.events.topics import topics_sync

    if name in _known_dead_letter_topics:
        return
    spec = spec_for(name)
    # A topic the catalog does not know is the broker's to create.
    if spec is not None and any(c.action == "created" for c in topics_sync([spec])):
        log.info("created dead-letter topic %s", name)
    _known_dead_letter_topics.add(name)
