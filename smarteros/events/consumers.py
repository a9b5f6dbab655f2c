"""Consumer workers: a handler registry keyed by topic and event type, run in consumer groups.

Per message: parse the envelope, validate its data against its type's schema and check that its
tenant is the one the topic belongs to (else dead letter); for each matching handler, in one
transaction scoped to that tenant, mark the event id processed for the group and run the handler
(a repeat is skipped); retry with backoff; dead-letter with the reason when retries run out or the
failure is permanent. Only an event's own fault is dead-lettered: when a dependency is down
(database, broker, Vault) the worker pauses its partitions, rewinds to the first unhandled
offset and tries again with backoff until it is back. The offset is committed after that, and
only once every dead letter of the batch was acknowledged, so a crash or outage replays rather
than drops. Tenant topics are subscribed by name, from the tenant directory
(smarteros.events.subscriptions): a new tenant's topics are joined within a second or two of
their creation, a deprovisioned tenant's are left before they are deleted, and no consumer reads
the metadata of every topic on the broker.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from smarteros.context import bound
from smarteros.events.catalog import topic_tenant
from smarteros.events.envelope import Envelope
from smarteros.events.failures import dead_letter, is_infrastructure_error
from smarteros.events.pending import PendingRetry, pending_retry
from smarteros.events.progress import GroupProgress
from smarteros.events.schemas import InvalidEvent, UnknownEventType, validate_event_data
from smarteros.events.subscriptions import ExplicitSubscription
from smarteros.infra.kafka import client_config

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], None]
RETRY_DELAYS = (0.2, 1.0, 3.0)
_FIRST_BACKOFF = (
    0.5  # seconds a paused worker waits first; doubled up to CONSUMER_MAX_BACKOFF_SECONDS
)


class PermanentFailure(Exception):
    """Retrying cannot help (an integration not connected, bad data): dead-letter at once."""


@dataclass(frozen=True)
class Registration:
    topic: str  # a platform topic, or "*.name" for that catalog topic of every tenant
    event_type: str  # "*" for every type on the topic
    group: str
    handler: Handler
    # For a "*.name" topic: the tenants whose topic has work for the handler (None: every
    # consumed tenant). Asked when the tenant directory moves; whatever changes its answer
    # calls subscriptions_changed().
    needed_by: Callable[[], Collection[str]] | None = None

    def subscription(self, slugs: Iterable[str]) -> list[str]:
        """The concrete topics this registration reads, given the consumed tenants."""
        if self.topic.startswith("*."):
            if self.needed_by is not None:
                needed = set(self.needed_by())
                slugs = [slug for slug in slugs if slug in needed]
            return [f"{slug}.{self.topic[2:]}" for slug in slugs]
        return [self.topic]

    def matches(self, topic: str, event_type: str) -> bool:
        if self.event_type not in ("*", event_type):
            return False
        if self.topic.startswith("*."):
            return topic.endswith(self.topic[1:]) and topic.count(".") >= self.topic.count(".")
        return topic == self.topic


_registry: list[Registration] = []


def handles(
    topic: str,
    event_type: str = "*",
    *,
    group: str,
    needed_by: Callable[[], Collection[str]] | None = None,
) -> Callable[[Handler], Handler]:
    """Register `handler` for events of `event_type` on `topic` ("*.whatsapp.inbound" for every
    tenant's topic), consumed by consumer group `group`; `needed_by` narrows a tenant topic to
    the tenants it names (a group then reads only topics that have work, whatever the number
    of tenants)."""

    def decorator(handler: Handler) -> Handler:
        _registry.append(Registration(topic, event_type, group, handler, needed_by))
        return handler

    return decorator


def registrations() -> list[Registration]:
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("handlers")
    return list(_registry)


def group_id(group: str) -> str:
    return f"{settings.KAFKA_CONSUMER_GROUP_PREFIX}.{group}"


def tenant_consumer_config(group: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings of a consumer group that reads tenant topics by name (the flows'
    groups and the topic counter): commits by hand after handling, starts at the earliest."""
    return client_config(
        **{
            "group.id": group_id(group),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
            # A re-subscription for a new tenant's topics moves only the partitions that
            # change owner; an eager assignor would stop and re-assign every partition of
            # the group each time. (Every member of a group must use the same protocol.)
            "partition.assignment.strategy": "cooperative-sticky",
            # Subscriptions are explicit and re-made when tenants come and go; the periodic
            # refresh only catches what that missed.
            "topic.metadata.refresh.interval.ms": 30000,
            **overrides,
        }
    )


def parse(message: Message) -> Envelope:
    """The message's envelope, validated; raises InvalidEvent if it holds a tenant other than
    the one its topic belongs to (platform topics' envelopes may name any tenant, or none)."""
    envelope = Envelope.from_bytes(message.value())
    validate_event_data(envelope.type, envelope.data)
    owner = topic_tenant(message.topic() or "")
    if owner is not None and envelope.tenant != owner:
        raise InvalidEvent(
            f"the envelope's tenant {envelope.tenant!r} is not {owner!r}, whose topic it came on"
        )
    return envelope


_TENANT_IDS_TTL = 60.0  # seconds a slug's id is trusted; a deleted tenant is noticed after this
_tenant_ids: dict[str, tuple[int | None, float]] = {}


def _tenant_id(slug: str) -> int | None:
    """The tenant's id (None if there is no such tenant), remembered for a minute: every batch
    needs it, and a slug's id never changes."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    known = _tenant_ids.get(slug)
    if known is not None and known[1] > time.monotonic():
        return known[0]
    with dangerously_unscoped():
        tenant_id = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if tenant_id is not None:
        _tenant_ids[slug] = (tenant_id, time.monotonic() + _TENANT_IDS_TTL)
    return tenant_id


class _SeenBefore(Exception):
    """Some event of the batch is marked already: the batch is a redelivery."""


# The ids travel as one text parameter rather than an array of thousands: far cheaper to send.
_IDS = "ids AS (SELECT unnest(string_to_array(%s, ','))::uuid AS id)"
_MARK = 'INSERT INTO smarteros_processedevent ("group", event_id, processed_at) SELECT %s, id, now() FROM ids'


def _claim_all(group: str, event_ids: list[str]) -> set[str]:
    """Mark every id processed for `group` in the current transaction, expecting all of them to
    be new (the usual case): a plain insert, cheaper than one that resolves conflicts. Raises
    _SeenBefore, leaving the transaction to be rolled back, when one is not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {_IDS} {_MARK}", [",".join(event_ids), group])
    except IntegrityError:
        raise _SeenBefore from None
    return set()


def _claim_unseen(group: str, event_ids: list[str]) -> set[str]:
    """Mark the ids not yet processed for `group`; returns those handled before."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {_IDS}, claimed AS ({_MARK} ON CONFLICT DO NOTHING RETURNING event_id) "
            "SELECT id::text FROM (SELECT id FROM ids EXCEPT SELECT event_id FROM claimed) AS seen",
            [",".join(event_ids), group],
        )
        return {row[0] for row in cursor.fetchall()}


def processed_events_prune(*, older_than: timedelta | None = None) -> int:
    """Forget handled event ids older than `older_than` (PROCESSED_EVENTS_RETENTION_DAYS)."""
    from smarteros.models import ProcessedEvent

    age = older_than or timedelta(days=settings.PROCESSED_EVENTS_RETENTION_DAYS)
    deleted, _ = ProcessedEvent.objects.filter(processed_at__lt=timezone.now() - age).delete()
    return deleted


def handle_once(group: str, reg: Registration, envelope: Envelope) -> bool:
    """Run the handler unless this group already handled this event; True if it ran."""
    return handle_batch_once(group, reg, [envelope]) == 1


def handle_batch_once(group: str, reg: Registration, envelopes: list[Envelope]) -> int:
    """Run the handler for each event of one tenant that this group has not handled yet, all in
    one transaction with their processed marks; returns how many ran. Any failure rolls back the
    whole batch."""
    slugs = {e.tenant for e in envelopes}
    if len(slugs) != 1:
        raise ValueError("a batch holds the events of one tenant")
    slug = slugs.pop()
    tenant_id = _tenant_id(slug) if slug else None
    if slug and tenant_id is None:
        raise PermanentFailure(f"unknown tenant {slug!r}")
    unique = list({e.id: e for e in envelopes}.values())  # an id twice in a batch runs once
    try:
        return _run_once(group, reg, unique, slug, tenant_id, claim=_claim_all)
    except _SeenBefore:
        return _run_once(group, reg, unique, slug, tenant_id, claim=_claim_unseen)


def _run_once(
    group: str,
    reg: Registration,
    envelopes: list[Envelope],
    slug: str | None,
    tenant_id: int | None,
    *,
    claim: Callable[[str, list[str]], set[str]],
) -> int:
    from tenants.scope import tenant_scope

    # One transaction for the marks and the effects, under the tenant's row-level security
    # (the processed-events table is platform-level, so the marks are not filtered by it).
    with tenant_scope(tenant_id) if tenant_id is not None else transaction.atomic():
        seen = claim(group, [e.id for e in envelopes])
        todo = [e for e in envelopes if e.id not in seen]
        with bound(tenant_slug=slug):
            for envelope in todo:
                with bound(trace_id=envelope.trace_id):
                    reg.handler(envelope)
    return len(todo)


class GroupWorker:
    """Consumes one group's topics and dispatches to its handlers until stopped."""

    def __init__(
        self,
        group: str,
        regs: list[Registration],
        *,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        **overrides: Any,
    ) -> None:
        self.group = group
        self.regs = regs
        self.retry_delays = retry_delays
        self.running = True
        self.consumer = Consumer(tenant_consumer_config(group, **overrides))
        self.subscription = ExplicitSubscription(self.consumer, group, self.topics)

    def topics(self, slugs: Iterable[str]) -> list[str]:
        """The topics this group reads when `slugs` are the consumed tenants."""
        slugs = list(slugs)
        return sorted({topic for reg in self.regs for topic in reg.subscription(slugs)})

    def handle_batch(self, messages: list[Message]) -> None:
        """Handle a batch: valid events grouped per handler and tenant, each group in one
        transaction; if a group fails, its events are retried one by one so that only the
        failing event is dead-lettered. Raises (without dead-lettering anything more) when a
        dependency is down: see is_infrastructure_error."""
        parsed: list[tuple[Message, Envelope]] = []
        for message in messages:
            try:
                parsed.append((message, parse(message)))
            except (UnknownEventType, InvalidEvent, ValueError) as exc:
                dead_letter(message, f"invalid event: {exc}", group=self.group)
        for reg in self.regs:
            groups: dict[str | None, list[tuple[Message, Envelope]]] = {}
            for message, envelope in parsed:
                if reg.matches(message.topic() or "", envelope.type):
                    groups.setdefault(envelope.tenant, []).append((message, envelope))
            for items in groups.values():
                if len(items) > 1:
                    try:
                        handle_batch_once(self.group, reg, [e for _, e in items])
                        continue
                    except Exception as exc:
                        if is_infrastructure_error(exc):
                            raise
                        log.info(
                            "batch of %d failed in %s; handling one by one", len(items), self.group
                        )
                for message, envelope in items:
                    self._run_with_retries(reg, envelope, message)

    def _run_with_retries(self, reg: Registration, envelope: Envelope, message: Message) -> None:
        # Between attempts the console lists the event as a pending dead letter; it leaves that
        # list however the retries end.
        with pending_retry(
            group=self.group,
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            event_id=envelope.id,
            event_type=envelope.type,
            attempts=len(self.retry_delays) + 1,
        ) as pending:
            self._attempts(reg, envelope, message, pending)

    def _attempts(
        self, reg: Registration, envelope: Envelope, message: Message, pending: PendingRetry
    ) -> None:
        from smarteros.errors import OperationError, UpstreamError

        for attempt in range(len(self.retry_delays) + 1):
            try:
                handle_once(self.group, reg, envelope)
                return
            except PermanentFailure as exc:
                reason = str(exc)
                break
            except Exception as exc:
                if is_infrastructure_error(exc):
                    raise  # not the event's fault: the worker pauses and tries again
                if isinstance(exc, OperationError):
                    reason = f"{exc.code}: {exc.message}"
                    if not isinstance(exc, UpstreamError):
                        break  # not connected, invalid input...: retrying cannot help
                else:
                    reason = f"{type(exc).__name__}: {exc}"
                    log.exception(
                        "handler %s failed on %s (attempt %d)",
                        reg.handler.__name__,
                        envelope.id,
                        attempt + 1,
                    )
            if attempt < len(self.retry_delays) and self.running:
                delay = self.retry_delays[attempt]
                pending.failed(
                    attempt=attempt + 1, error=f"{reg.handler.__name__}: {reason}", delay=delay
                )
                time.sleep(delay)
        dead_letter(message, f"{reg.handler.__name__}: {reason}", group=self.group)

    def run(self, *, max_idle_polls: int | None = None, batch_size: int = 500) -> None:
        subscription = self.subscription
        subscription.start()
        progress = GroupProgress(self.consumer, self.group)
        idle = handled = 0
        backoff = _FIRST_BACKOFF
        try:
            while self.running:
                subscription.refresh()
                progress.tick(handled)
                handled = 0
                batch = []
                for message in self._next_messages(batch_size):
                    error = message.error()
                    if error is None:
                        batch.append(message)
                    elif error.code() not in (
                        KafkaError._PARTITION_EOF,
                        KafkaError.UNKNOWN_TOPIC_OR_PART,
                    ):
                        log.warning("consumer %s: %s", self.group, error)
                if not batch:
                    idle += 1
                    if max_idle_polls is not None and idle >= max_idle_polls:
                        return
                    continue
                idle = 0
                try:
                    self.handle_batch(batch)
                    # Commit only after the batch was handled and its dead letters acknowledged:
                    # a crash replays it.
                    self.consumer.commit(asynchronous=False)
                    handled = len(batch)
                except Exception as exc:
                    if not is_infrastructure_error(exc):
                        raise
                    self._pause_until_retry(batch, exc, backoff)
                    backoff = min(backoff * 2, settings.CONSUMER_MAX_BACKOFF_SECONDS)
                    continue
                backoff = _FIRST_BACKOFF
        finally:
            subscription.close()
            if sys.exc_info()[0] is None:  # a member that failed must show as stalled
                progress.close()
            self.consumer.close()
            connection.close()  # this thread's own; nothing else would close it

    def _pause_until_retry(self, batch: list[Message], exc: BaseException, delay: float) -> None:
        """A dependency is down: pause the assigned partitions, rewind each to the first offset
        of the batch (events handled already are skipped by their marks on the next attempt),
        wait `delay` seconds while keeping the group membership alive, then resume."""
        log.warning(
            "consumer %s: a dependency is down (%s: %s); paused, retrying in %.1fs",
            self.group,
            type(exc).__name__,
            str(exc)[:300],
            delay,
        )
        connection.close()  # a broken connection is replaced on the next attempt
        paused = self.consumer.assignment()
        self.consumer.pause(paused)
        self._rewind(batch)
        deadline = time.monotonic() + delay
        while self.running and time.monotonic() < deadline:
            # Polling serves heartbeats and rebalances; a message from a partition assigned
            # meanwhile is put back rather than skipped.
            message = self.consumer.poll(0.2)
            if message is not None and message.error() is None:
                self._rewind([message])
                partition = TopicPartition(message.topic() or "", message.partition() or 0)
                self.consumer.pause([partition])
                paused.append(partition)
        self.consumer.resume(paused)

    def _rewind(self, messages: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            where = (message.topic() or "", message.partition() or 0)
            first[where] = min(first.get(where, message.offset() or 0), message.offset() or 0)
        for (topic, partition), offset in first.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                # Revoked meanwhile: its next owner starts from the committed offset.
                log.info("consumer %s: no rewind of %s[%d]: %s", self.group, topic, partition, exc)

    def _next_messages(self, batch_size: int) -> list[Message]:
        """Wait up to half a second for a message, then take what else is already fetched.
        consume() alone would hold a lone event until its timeout, waiting to fill a batch."""
        first = self.consumer.poll(0.5)
        if first is None or batch_size <= 1:
            return [] if first is None else [first]
        return [first, *self.consumer.consume(num_messages=batch_size - 1, timeout=0)]

    def stop(self, *args: object) -> None:
        self.running = False
