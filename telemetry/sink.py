"""The telemetry sink: a consumer group on `mcp.agent.telemetry` batch-inserting into ClickHouse.

Offsets are committed only after ClickHouse accepted the batch (at-least-once); a replayed batch
is harmless because queries collapse duplicates by event id. While ClickHouse is down the sink
backs off and retries the same batch; events wait in Kafka.

One batch is inserted (on a second thread) while the next is read and decoded, so at most two
batches are held; offsets are committed batch by batch, in order, each after its own insert.
Records are decoded by telemetry/sink_rows.py; one it cannot store goes to the dead-letter topic.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from clickhouse_driver import Client
from confluent_kafka import Consumer, KafkaException, TopicPartition
from django.conf import settings

from smarteros.events.consumers import dead_letter, group_id
from smarteros.events.progress import GroupProgress
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import client_config
from telemetry.sink_rows import (
    COLUMNS,
    USAGE_COLUMNS,
    USAGE_TYPE,
    Rows,
    as_columns,
    row_from_envelope,
)

__all__ = ["COLUMNS", "USAGE_COLUMNS", "USAGE_TYPE", "TelemetrySink", "row_from_envelope"]

log = logging.getLogger(__name__)

TOPIC = "mcp.agent.telemetry"
GROUP = "telemetry-sink"
CONSUME_CHUNK = 500  # messages taken from the consumer at a time (see TelemetrySink._collect)


def insert_until_stopped(
    attempt: Callable[[], None], *, running: Callable[[], bool], who: str
) -> bool:
    """Run a ClickHouse insert, retrying with backoff while ClickHouse is away; False if the
    worker was stopped first. Tried at least once, so a batch read before a stop still goes in."""
    backoff = 0.5
    while True:
        try:
            attempt()
            return True
        except Exception as exc:
            if not running():
                return False
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log.warning(
                "%s: ClickHouse insert failed (%s); retrying in %.1fs", who, reason, backoff
            )
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


class _Pending(NamedTuple):
    inserted: Future[bool]
    offsets: list[TopicPartition]
    messages: int


class TelemetrySink:
    def __init__(
        self,
        *,
        batch_size: int = 5000,
        batch_seconds: float = 1.0,
        topic: str = TOPIC,
        on_insert: Callable[[int], None] | None = None,
        **overrides: Any,
    ) -> None:
        self.topic = topic
        self.on_insert = on_insert
        self.on_assign: Callable[[Any, Any], None] | None = None
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.running = True
        self.consumer = Consumer(
            client_config(
                **{
                    "group.id": group_id(GROUP),
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
                    # Fetches of up to 8 MB a partition (librdkafka's default is 1 MB): a batch
                    # arrives in a few round trips. The prefetch stays bounded by
                    # queued.max.messages.kbytes.
                    "max.partition.fetch.bytes": 8 * 1024 * 1024,
                    **overrides,
                }
            )
        )

    def insert(
        self,
        rows: list[tuple[Any, ...]],
        *,
        table: str = "operation_calls",
        columns: tuple[str, ...] = COLUMNS,
        client: Client | None = None,
    ) -> None:
        """Insert the rows ClickHouse does not hold yet. A batch is replayed only when the sink
        stopped between its insert and its offset commit; checking the batch's event ids first
        (cheap: the table is ordered by tenant, time, event id) keeps the table free of
        duplicates, so queries need no FINAL."""
        own = client is None
        client = client or clickhouse_client(timeout=10)
        try:
            ids, times, tenants, *_ = data = as_columns(rows, len(columns))
            # The batch's ids travel as an external table: an IN list would outgrow max_query_size.
            present = {
                row[0]
                for row in client.execute(
                    f"SELECT event_id FROM {table} WHERE tenant IN %(tenants)s "
                    "AND time BETWEEN toDateTime(%(first)s) AND toDateTime(%(last)s) "
                    "AND event_id IN batch_ids",
                    {"tenants": tuple(set(tenants)), "first": min(times), "last": max(times)},
                    external_tables=[
                        {
                            "name": "batch_ids",
                            "structure": [("event_id", "String")],
                            "data": [(event_id,) for event_id in ids],
                        }
                    ],
                )
            }
            if present:
                fresh = [r for r in rows if r[0] not in present]
                if not fresh:
                    return
                data = as_columns(fresh, len(columns))
            client.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES", data, columnar=True
            )
        finally:
            if own:
                client.disconnect()

    def _collect(self) -> Rows:
        """Read and decode one batch. Records are decoded as they arrive, a few hundred at a
        time, so the consumer's message objects die young: held for a whole batch, every one
        of them was promoted by the garbage collector and full collections walked the heap
        several times per batch."""
        batch = Rows()
        deadline = time.monotonic() + self.batch_seconds
        while self.running and batch.read < self.batch_size and time.monotonic() < deadline:
            for message in self.consumer.consume(
                num_messages=min(self.batch_size - batch.read, CONSUME_CHUNK), timeout=0.2
            ):
                if message.error() is not None:
                    continue
                batch.read += 1
                try:
                    batch.add(message.value())
                except (ValueError, KeyError, TypeError) as exc:
                    dead_letter(message, f"malformed telemetry event: {type(exc).__name__}: {exc}")
        return batch

    def run(self, *, max_idle_batches: int | None = None) -> None:
        """Consume until stopped. A batch is inserted on a second thread while the next one is
        read and decoded (ClickHouse works on its insert meanwhile); at most two batches are
        held. A batch's offsets are committed only after its insert, in batch order."""
        if self.on_assign is not None:
            self.consumer.subscribe([self.topic], on_assign=self.on_assign)
        else:
            self.consumer.subscribe([self.topic])
        idle = 0
        progress = GroupProgress(self.consumer, GROUP)
        pending: _Pending | None = None
        inserter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telemetry-insert")
        try:
            while self.running:
                progress.tick()
                batch = self._collect()
                if not batch.read:
                    if pending is not None:
                        settled, pending = pending, None
                        if not self._settle(settled, progress):
                            return
                    idle += 1
                    if max_idle_batches is not None and idle >= max_idle_batches:
                        return
                    continue
                idle = 0
                if pending is not None:
                    settled, pending = pending, None
                    if not self._settle(settled, progress):
                        return
                pending = _Pending(
                    inserter.submit(self._insert_with_backoff, batch.calls, batch.usage),
                    # The consumer's position now: one past the last message read from each
                    # partition, this batch's and (in flight or committed) earlier ones'.
                    [
                        tp
                        for tp in self.consumer.position(self.consumer.assignment())
                        if tp.offset >= 0
                    ],
                    batch.read,
                )
            if pending is not None:  # stopped: the batch in flight is committed if it went in
                self._settle(pending, progress)
        finally:
            failed = sys.exc_info()[0] is not None
            if failed:
                self.running = False  # an insert retrying in flight gives up; nothing commits
            inserter.shutdown(wait=True)
            if not failed:  # a member that failed must show as stalled
                progress.close()
            self.consumer.close()

    def _settle(self, pending: _Pending, progress: GroupProgress) -> bool:
        """Wait for a batch's insert, then commit its offsets; False if the sink stopped with
        the batch not inserted (its offsets stay uncommitted: it is read again)."""
        if not pending.inserted.result():
            log.warning("telemetry sink: stopping with a batch not inserted; it is read again")
            return False
        # Not commit() of the current position: the consumer has read the next batch already.
        try:
            self.consumer.commit(offsets=pending.offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning(
                "telemetry sink: offsets not committed (%s); the batch will be read again", exc
            )
        progress.tick(pending.messages)
        return True

    def _insert_with_backoff(
        self, rows: list[tuple[Any, ...]], usage: list[tuple[Any, ...]] | None = None
    ) -> bool:
        def attempt() -> None:
            client = clickhouse_client(timeout=10)
            try:
                if rows:
                    self.insert(rows, client=client)
                if usage:
                    self.insert(usage, table="llm_usage", columns=USAGE_COLUMNS, client=client)
            finally:
                client.disconnect()
            if self.on_insert is not None:
                self.on_insert(len(rows) + len(usage or ()))

        return not (rows or usage) or insert_until_stopped(
            attempt, running=lambda: self.running, who="telemetry sink"
        )

    def stop(self, *args: object) -> None:
        self.running = False
