"""Transactional outbox: events are rows written in the caller's transaction, published later.

A broker outage therefore delays events and never loses them: the row stays until the relay
has had the broker acknowledge it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from confluent_kafka import KafkaError, KafkaException
from django.utils import timezone

from smarteros.events.catalog import max_message_bytes, spec_for
from smarteros.events.emitted import note_emitted
from smarteros.events.envelope import Envelope
from smarteros.events.relay_errors import is_message_fault
from smarteros.events.schemas import EventTooLarge, InvalidEvent, validate_event_data
from smarteros.events.tally import published_tally
from smarteros.infra.kafka import get_producer
from smarteros.models import OutboxCommit, OutboxEvent

if TYPE_CHECKING:
    from tenants.models import Tenant

log = logging.getLogger(__name__)


def outbox_emit(
    *, topic: str, envelope: Envelope, key: str = "", tenant_id: int | None = None
) -> None:
    """Queue `envelope` for `topic` in the current transaction (commits with the state change).
    Raises InvalidEvent if its data does not match its type's schema, EventTooLarge if it is
    larger than the topic accepts."""
    outbox_emit_many([(topic, envelope, key)], tenant_id=tenant_id)


class TenantEventFields(TypedDict):
    tenant: Tenant
    topic: str  # the topic's name under the tenant's slug
    event_type: str
    data: dict[str, Any]
    key: str
    source: str
    trace_id: str


TenantEvent = tuple[str, Envelope, str]  # (topic, envelope, key), as outbox_params takes them


def tenant_event(**fields: Unpack[TenantEventFields]) -> TenantEvent:
    """An event of `tenant` for its own `{slug}.{topic}` topic."""
    slug = fields["tenant"].slug
    envelope = Envelope(
        type=fields["event_type"],
        source=fields["source"],
        tenant=slug,
        trace_id=fields["trace_id"],
        data=fields["data"],
    )
    return f"{slug}.{fields['topic']}", envelope, fields["key"]


def tenant_event_emit(**fields: Unpack[TenantEventFields]) -> Envelope:
    """Queue an event of `tenant` for its own `{slug}.{topic}` topic, in the current transaction."""
    event = tenant_event(**fields)
    outbox_emit_many([event], tenant_id=fields["tenant"].pk)
    return event[1]


# Separates the values of one column in the text parameters of outbox_emit_many: a control
# character that JSON text never holds raw and that the other values are checked not to hold.
_SEP = "\x1e"
_XID = "pg_current_xact_id()::text::bigint"
# The first statement of a transaction that emits also registers the transaction, which a
# deferred trigger numbers at commit (OutboxCommit): the relay publishes in that order. Both
# parts take a `when` condition, so a statement of the caller's can emit only if its own
# write happened (integrations.deliveries: a delivery's events only on its first claim).


def outbox_register_sql(when: str = "TRUE") -> str:
    """The CTE body that registers the current transaction for the relay, if `when` holds."""
    return (
        f"INSERT INTO {OutboxCommit._meta.db_table} (xid) SELECT {_XID} WHERE {when} "
        "ON CONFLICT DO NOTHING"
    )


def outbox_rows_sql(when: str = "TRUE") -> str:
    """The INSERT of outbox_params' rows, if `when` holds."""
    return (
        f"INSERT INTO {OutboxEvent._meta.db_table} "
        "(event_id, tenant_id, tenant, topic, key, event_type, payload, created_at, xid, "
        "failure_reason) "
        f"SELECT e::uuid, %s, coalesce(tn, ''), t, coalesce(k, ''), et, p, now(), {_XID}, '' "
        "FROM unnest("
        + ", ".join(["string_to_array(%s, E'\\x1e')"] * 6)
        + f") AS r(e, tn, t, k, et, p) WHERE {when}"
    )


_INSERT = f"WITH registered AS ({outbox_register_sql()}) {outbox_rows_sql()}"


# Re-queueing an event that went out before (a dead letter's replay) puts its row back in line.
_REQUEUE = (
    _INSERT + " ON CONFLICT (event_id) DO UPDATE SET sent_at = NULL, failed_at = NULL, "
    "failure_reason = '', xid = EXCLUDED.xid, topic = EXCLUDED.topic, key = EXCLUDED.key, "
    "payload = EXCLUDED.payload"
)


def _check_size(topic: str, key: str, payload: str) -> None:
    limit = max_message_bytes(topic)
    # Four bytes per character at most: the exact UTF-8 size is needed only near the limit.
    if (len(payload) + len(key)) * 4 <= limit:
        return
    size = len(payload.encode()) + len(key.encode())
    if size > limit:
        raise EventTooLarge(topic=topic, size=size, limit=limit)


def outbox_emit_many(
    events: list[tuple[str, Envelope, str]], *, tenant_id: int | None, requeue: bool = False
) -> None:
    """Queue many (topic, envelope, key) events of one tenant with one INSERT, in the current
    transaction. Raises InvalidEvent if an event's data does not match its type's schema, and
    EventTooLarge (an InvalidEvent; 413 on HTTP) if it exceeds its topic's max.message.bytes.

    With `requeue`, an event whose id is in the outbox already (published before) is put back
    in line instead of refused: a dead letter's replay keeps its event id, so the consumer
    groups that handled it skip it and only the one that dead-lettered it runs again.

    Each column travels as one text parameter that PostgreSQL splits itself: far cheaper than
    binding thousands of parameters or expanding a JSON document."""
    params = outbox_params(events, tenant_id=tenant_id)
    from tenants.scope import scoped_connection

    with scoped_connection().cursor() as cursor:
        cursor.execute(_REQUEUE if requeue else _INSERT, params)


def outbox_params(events: list[tuple[str, Envelope, str]], *, tenant_id: int | None) -> list[Any]:
    """The parameters of outbox_rows_sql for (topic, envelope, key) events, each checked against
    its type's schema (InvalidEvent) and its topic's max.message.bytes (EventTooLarge)."""
    ids, tenants, topics, keys, types, payloads = [], [], [], [], [], []
    for topic, envelope, key in events:
        validate_event_data(envelope.type, envelope.data)
        ids.append(envelope.id)
        tenants.append(envelope.tenant or "")
        topics.append(topic)
        keys.append(key)
        types.append(envelope.type)
        payloads.append(payload := envelope.model_dump_json())
        _check_size(topic, key, payload)
    note_emitted(types)
    columns = [_SEP.join(column) for column in (ids, tenants, topics, keys, types, payloads)]
    # A separator inside a value would shift the columns; JSON payloads cannot hold one raw.
    if any(column.count(_SEP) != len(events) - 1 for column in columns[:5]):
        raise InvalidEvent("an event id, tenant, topic, key or type holds the character \\x1e")
    return [tenant_id, *columns]


_known_topics: set[str] = set()


def _ensure_topics(names: set[str]) -> None:
    """Create catalog topics the batch needs but the broker lacks (a tenant whose provisioning
    has not run yet), with their catalog configs rather than the broker's defaults."""
    from smarteros.events.topics import topics_sync
    from smarteros.infra.kafka import admin_client

    missing = names - _known_topics
    if not missing:
        return
    existing = set(admin_client().list_topics(timeout=10).topics)
    specs = [spec for name in missing - existing if (spec := spec_for(name)) is not None]
    if specs:
        topics_sync(specs)
    _known_topics.update(existing | {spec.name for spec in specs})


# pg_try_advisory_xact_lock key held by the relay publishing a batch ("outbox" in ASCII).
RELAY_LOCK = 0x6F7574626F78


_PENDING = (
    "SELECT o.id, o.topic, o.key, o.event_type, o.payload, o.tenant, c.seq FROM ("
    f"SELECT xid, seq FROM {OutboxCommit._meta.db_table} WHERE seq IS NOT NULL "
    "ORDER BY seq LIMIT %s) AS c "
    f"JOIN {OutboxEvent._meta.db_table} o ON o.xid = c.xid "
    "AND o.sent_at IS NULL AND o.failed_at IS NULL ORDER BY c.seq, o.id LIMIT %s"
)
Row = tuple[int, str, str, str, str, str, int]  # id, topic, key, type, payload, tenant, seq


def relay_batch(*, limit: int = 2000, flush_timeout: float = 30.0) -> int:
    """Publish up to `limit` pending events in commit order; returns how many were sent.

    Several relays may run: one publishes a batch at a time (a transaction-level advisory lock),
    so batches never overtake each other; within a batch, transactions go out in the order they
    committed (OutboxCommit), so per-key order holds even with concurrent writers. Rows are
    marked sent only after the broker acknowledged them. A row the broker refuses for its own
    sake (too large, invalid topic: see relay_errors) is set aside with the reason and the rest
    are marked sent; a broker or network failure keeps the whole batch for the next attempt.
    Payloads go out byte for byte as the emitter serialised them.
    """
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped() as platform, platform.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [RELAY_LOCK])
        if not cursor.fetchone()[0]:  # type: ignore[index]
            return 0
        # Losing the marks of the last batches in a database crash only republishes them, and
        # consumers skip event ids they have handled: the commit need not wait for the disk.
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(_PENDING, [limit, limit])
        rows: list[Row] = cursor.fetchall()
        if not rows:
            _forget_transactions(cursor, None)
            return 0
        _ensure_topics({row[1] for row in rows})
        refused = _publish(rows, flush_timeout)
        if refused:
            # A broker may refuse a whole request for one message in it: only what fails alone
            # is that message's own fault.
            refused = {
                row[0]: reason
                for row in rows
                if row[0] in refused and (reason := _publish_alone(row, flush_timeout))
            }
        _mark(cursor, rows, refused)
        published_tally(row[1] for row in rows if row[0] not in refused)  # the topics' counts
        return len(rows) - len(refused)


def _publish(rows: list[Row], flush_timeout: float) -> dict[int, str]:
    """Produce `rows` and wait for the broker; returns the rows refused for their own sake (id
    to reason). Raises if the broker did not acknowledge the rest."""
    producer = get_producer()
    refused: dict[int, str] = {}
    transport: list[str] = []

    def on_delivery(row_id: int, catalog_topic: bool) -> Callable[[Any, Any], None]:
        def report(err: Any, msg: Any) -> None:
            if err is None:
                return
            if is_message_fault(err, catalog_topic=catalog_topic):
                refused[row_id] = f"{err.name()}: {err.str()}"
            else:
                transport.append(str(err))

        return report

    in_catalog = {topic: spec_for(topic) is not None for topic in {row[1] for row in rows}}
    for n, (row_id, topic, key, event_type, payload, tenant, _) in enumerate(rows):
        catalog_topic = in_catalog[topic]
        try:
            _produce_waiting_for_room(
                producer,
                topic,
                wait=flush_timeout,
                key=key.encode() if key else None,
                value=payload.encode(),
                headers=[("event-type", event_type.encode()), ("tenant", tenant.encode())],
                on_delivery=on_delivery(row_id, catalog_topic),
            )
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._FATAL:
                # The producer is dead for good (a broker restarted without its producer state
                # can answer with an out-of-order sequence): the next attempt needs a new one.
                _known_topics.clear()
                get_producer.cache_clear()
                raise
            if not is_message_fault(exc.args[0], catalog_topic=catalog_topic):
                raise
            refused[row_id] = f"{exc.args[0].name()}: {exc.args[0].str()}"
        if n % 1000 == 999:
            producer.poll(0)  # serve delivery reports now and then; flush() serves the rest
    remaining = producer.flush(flush_timeout)
    if remaining or transport:
        # A broker that came back empty knows neither our topics nor our producer id:
        # forget both so the next attempt recreates them.
        _known_topics.clear()
        get_producer.cache_clear()
        # Rolling back releases the locks; nothing is marked, so the next attempt resends
        # (the idempotent producer and the consumers' processed-events table keep effects single).
        raise RuntimeError(f"broker did not acknowledge the batch: {transport[:3] or remaining}")
    return refused


def _produce_waiting_for_room(producer: Any, topic: str, *, wait: float, **message: Any) -> None:
    """produce(), waiting up to `wait` seconds while the client's queue is full (a batch of
    large events); then the broker is not keeping up and the batch is retried later."""
    deadline = time.monotonic() + wait
    while True:
        try:
            producer.produce(topic, **message)
            return
        except BufferError:
            if time.monotonic() > deadline:
                get_producer.cache_clear()  # as after a flush that timed out
                raise RuntimeError("broker did not acknowledge the batch: queue full") from None
            producer.poll(0.5)


def _publish_alone(row: Row, flush_timeout: float) -> str:
    """Publish one refused row on its own; returns the reason it is refused again, or ""."""
    return _publish([row], flush_timeout).get(row[0], "")


def _mark(cursor: Any, rows: list[Row], refused: dict[int, str]) -> None:
    """Stamp the batch: sent, or set aside with the reason; forget transactions left empty."""
    table = OutboxEvent._meta.db_table
    sent = [row[0] for row in rows if row[0] not in refused]
    if sent:
        cursor.execute(
            f"UPDATE {table} SET sent_at = now() "
            "WHERE id = ANY(string_to_array(%s, ',')::bigint[])",
            [",".join(map(str, sent))],
        )
    for row_id, reason in refused.items():
        cursor.execute(
            f"UPDATE {table} SET failed_at = now(), failure_reason = %s WHERE id = %s",
            [reason[:2000], row_id],
        )
        log.error("outbox: event row %s set aside, the broker refuses it: %s", row_id, reason)
    _forget_transactions(cursor, max(row[6] for row in rows))


def _forget_transactions(cursor: Any, up_to: int | None) -> None:
    """Delete the commit numbers (up to `up_to`, or all) of transactions with no pending event
    left: sent, set aside, or deleted by hand. One left behind would hold a place in line."""
    commits, table = OutboxCommit._meta.db_table, OutboxEvent._meta.db_table
    cursor.execute(
        f"DELETE FROM {commits} c WHERE c.seq <= coalesce(%s, c.seq) "
        f"AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.xid = c.xid "
        "AND o.sent_at IS NULL AND o.failed_at IS NULL)",
        [up_to],
    )


def outbox_retry(*, ids: list[int]) -> int:
    """Put set-aside rows back in line (after their cause was fixed); returns how many. They go
    out in this transaction's commit order; a row refused again is set aside again with the
    reason."""
    from tenants.scope import dangerously_unscoped

    table = OutboxEvent._meta.db_table
    with dangerously_unscoped() as platform, platform.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {OutboxCommit._meta.db_table} (xid) VALUES ({_XID}) "
            "ON CONFLICT DO NOTHING"
        )
        cursor.execute(
            f"UPDATE {table} SET failed_at = NULL, failure_reason = '', xid = {_XID} "
            "WHERE id = ANY(%s) AND sent_at IS NULL AND failed_at IS NOT NULL",
            [ids],
        )
        return int(cursor.rowcount)


def outbox_republish(*, since: datetime) -> int:
    """Put every event published since `since` back in line, in the order it was written;
    returns how many. For a broker that lost what it acknowledged after that moment (the
    local stack's broker restored from a backup taken then): consumers skip the event ids
    they handled already, so only what the broker lost takes effect."""
    from tenants.scope import dangerously_unscoped

    table = OutboxEvent._meta.db_table
    with dangerously_unscoped() as platform, platform.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {OutboxCommit._meta.db_table} (xid) VALUES ({_XID}) "
            "ON CONFLICT DO NOTHING"
        )
        cursor.execute(
            f"UPDATE {table} SET sent_at = NULL, xid = {_XID} "
            "WHERE sent_at >= %s AND failed_at IS NULL",
            [since],
        )
        return int(cursor.rowcount)


@dataclass(frozen=True)
class OutboxBacklog:
    unsent: int
    oldest_unsent_age_seconds: float
    set_aside: int

    def problems(self) -> list[str]:
        """What is past the OUTBOX_DEGRADED_* thresholds, in words (empty when all is well)."""
        from django.conf import settings

        found = []
        if self.oldest_unsent_age_seconds > settings.OUTBOX_DEGRADED_AGE_SECONDS:
            found.append(f"oldest unsent event waits for {self.oldest_unsent_age_seconds:.0f}s")
        if self.set_aside > settings.OUTBOX_DEGRADED_SET_ASIDE:
            found.append(f"{self.set_aside} event(s) set aside, refused by the broker")
        return found


def outbox_backlog() -> OutboxBacklog:
    """How many events wait, how long the oldest has waited, and how many are set aside."""
    from tenants.scope import dangerously_unscoped

    table = OutboxEvent._meta.db_table
    with dangerously_unscoped() as platform, platform.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE failed_at IS NULL), "
            "coalesce(extract(epoch FROM now() - min(created_at) FILTER "
            "(WHERE failed_at IS NULL)), 0), count(*) FILTER (WHERE failed_at IS NOT NULL) "
            f"FROM {table} WHERE sent_at IS NULL"
        )
        unsent, age, set_aside = cursor.fetchone()  # type: ignore[misc]
    return OutboxBacklog(int(unsent), float(age), int(set_aside))


def outbox_prune(*, older_than: timedelta | None = None) -> int:
    """Delete rows published longer ago than `older_than` (OUTBOX_SENT_RETENTION_HOURS)."""
    from django.conf import settings

    from tenants.scope import dangerously_unscoped

    age = older_than or timedelta(hours=settings.OUTBOX_SENT_RETENTION_HOURS)
    with dangerously_unscoped():
        deleted, _ = OutboxEvent.objects.filter(
            sent_at__isnull=False, sent_at__lt=timezone.now() - age
        ).delete()
    return deleted


def _connect() -> None:
    """Open the producer's connection and learn the broker's topics before the first event
    arrives, so that event does not wait for them."""
    try:
        metadata = get_producer().list_topics(timeout=10)
    except Exception as exc:
        log.warning("outbox relay: broker not reachable yet (%s)", exc)
        return
    _known_topics.update(metadata.topics)


_REPORT_EVERY = 60.0  # seconds between the relay's reports of a degraded backlog


def _report_backlog() -> None:
    try:
        backlog = outbox_backlog()
    except Exception as exc:
        log.warning("outbox relay: backlog unknown (%s)", exc)
        return
    if problems := backlog.problems():
        log.warning(
            "outbox degraded: %s (unsent=%d, set_aside=%d)",
            "; ".join(problems),
            backlog.unsent,
            backlog.set_aside,
        )


def run_relay(*, stop: Callable[[], bool] = lambda: False, idle_sleep: float = 0.05) -> None:
    """Publish forever, backing off while the broker is down, and log a degraded backlog every
    minute. Pruning is the events_prune task's."""
    _connect()
    backoff = 0.5
    next_report = time.monotonic()
    while not stop():
        if time.monotonic() >= next_report:
            _report_backlog()
            next_report = time.monotonic() + _REPORT_EVERY
        try:
            sent = relay_batch(limit=10_000)
            backoff = 0.5
        except Exception as exc:
            log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        if not sent:
            time.sleep(idle_sleep)
