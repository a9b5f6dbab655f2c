"""The telemetry sink: a consumer group on `mcp.agent.telemetry` batch-inserting into ClickHouse.

Offsets are committed only after ClickHouse accepted the batch (at-least-once); a replayed batch
is harmless because queries collapse duplicates by event id. While ClickHouse is down the sink
backs off and retries the same batch; events wait in Kafka.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import Consumer, Message
from django.conf import settings

from smarteros.events.consumers import dead_letter, group_id
from smarteros.events.progress import GroupProgress
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import client_config, commit_or_read_again

log = logging.getLogger(__name__)

TOPIC = "mcp.agent.telemetry"
GROUP = "telemetry-sink"
COLUMNS = (
    "event_id",
    "time",
    "tenant",
    "operation",
    "service",
    "surface",
    "status",
    "error_type",
    "latency_ms",
    "input_bytes",
    "output_bytes",
    "model",
    "tokens_in",
    "tokens_out",
    "session_id",
    "trace_id",
)
# Token usage of every LLM reply (an operation's or an effect's), by provider and model.
USAGE_TYPE = "llm.usage"
USAGE_COLUMNS = (
    "event_id",
    "time",
    "tenant",
    "provider",
    "model",
    "origin",
    "tokens_in",
    "tokens_out",
    "trace_id",
)


def usage_row(envelope: dict[str, Any]) -> tuple[Any, ...]:
    """One llm_usage row (in USAGE_COLUMNS order) from an `llm.usage` envelope."""
    data = envelope["data"]
    return (
        str(envelope["id"]),
        datetime.fromisoformat(envelope["time"][:19]),
        str(envelope["tenant"]),
        str(data["provider"]),
        str(data["model"]),
        str(data.get("origin", "")),
        int(data["tokens_in"]),
        int(data["tokens_out"]),
        str(envelope.get("trace_id", "")),
    )


def row_from_envelope(raw: bytes | None) -> tuple[Any, ...]:
    """One operation_calls row (in COLUMNS order) from a telemetry envelope."""
    envelope = orjson.loads(raw or b"")
    data = envelope["data"]
    # Envelope times are always UTC ("...Z" or "+00:00"); ClickHouse DateTime has second precision.
    when = datetime.fromisoformat(envelope["time"][:19])
    return (
        str(envelope["id"]),
        when,
        str(envelope["tenant"]),
        str(data["operation"]),
        str(data.get("service", "")),
        str(data.get("surface", "")),
        str(data["status"]),
        str(data.get("error_type", "")),
        float(data.get("latency_ms", 0)),
        int(data.get("input_bytes", 0)),
        int(data.get("output_bytes", 0)),
        str(data.get("model", "")),
        int(data.get("tokens_in", 0)),
        int(data.get("tokens_out", 0)),
        str(data.get("session_id", "")),
        str(envelope.get("trace_id", "")),
    )


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
    ) -> None:
        """Insert the rows ClickHouse does not hold yet. A batch is replayed only when the sink
        stopped between its insert and its offset commit; checking the batch's event ids first
        (cheap: the table is ordered by tenant, time, event id) keeps the table free of
        duplicates, so queries need no FINAL."""
        client = clickhouse_client(timeout=10)
        try:
            # The batch's ids travel as an external table: an IN list would outgrow max_query_size.
            present = {
                row[0]
                for row in client.execute(
                    f"SELECT event_id FROM {table} WHERE tenant IN %(tenants)s "
                    "AND time BETWEEN %(first)s AND %(last)s AND event_id IN batch_ids",
                    {
                        "tenants": tuple({r[2] for r in rows}),
                        "first": min(r[1] for r in rows),
                        "last": max(r[1] for r in rows),
                    },
                    external_tables=[
                        {
                            "name": "batch_ids",
                            "structure": [("event_id", "String")],
                            "data": [{"event_id": r[0]} for r in rows],
                        }
                    ],
                )
            }
            fresh = [r for r in rows if r[0] not in present] if present else rows
            if fresh:
                client.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", fresh)
        finally:
            client.disconnect()

    def _collect(self) -> list[Message]:
        messages: list[Message] = []
        deadline = time.monotonic() + self.batch_seconds
        while self.running and len(messages) < self.batch_size and time.monotonic() < deadline:
            got = self.consumer.consume(num_messages=self.batch_size - len(messages), timeout=0.2)
            messages.extend(m for m in got if m.error() is None)
        return messages

    def run(self, *, max_idle_batches: int | None = None) -> None:
        if self.on_assign is not None:
            self.consumer.subscribe([self.topic], on_assign=self.on_assign)
        else:
            self.consumer.subscribe([self.topic])
        idle = 0
        progress = GroupProgress(self.consumer, GROUP)
        try:
            while self.running:
                progress.tick()
                messages = self._collect()
                if not messages:
                    idle += 1
                    if max_idle_batches is not None and idle >= max_idle_batches:
                        return
                    continue
                idle = 0
                rows: list[tuple[Any, ...]] = []
                usage: list[tuple[Any, ...]] = []
                for message in messages:
                    try:
                        envelope = orjson.loads(message.value() or b"")
                        if envelope.get("type") == USAGE_TYPE:
                            usage.append(usage_row(envelope))
                        else:
                            rows.append(row_from_envelope(message.value()))
                    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                        dead_letter(
                            message, f"malformed telemetry event: {type(exc).__name__}: {exc}"
                        )
                if not self._insert_with_backoff(rows, usage):
                    log.warning(
                        "telemetry sink: stopping with a batch not inserted; it is read again"
                    )
                    return  # offsets stay uncommitted
                commit_or_read_again(self.consumer, who="telemetry sink")
                progress.tick(len(messages))
        finally:
            if sys.exc_info()[0] is None:  # a member that failed must show as stalled
                progress.close()
            self.consumer.close()

    def _insert_with_backoff(
        self, rows: list[tuple[Any, ...]], usage: list[tuple[Any, ...]] | None = None
    ) -> bool:
        def attempt() -> None:
            if rows:
                self.insert(rows)
            if usage:
                self.insert(usage, table="llm_usage", columns=USAGE_COLUMNS)
            if self.on_insert is not None:
                self.on_insert(len(rows) + len(usage or ()))

        return not (rows or usage) or insert_until_stopped(
            attempt, running=lambda: self.running, who="telemetry sink"
        )

    def stop(self, *args: object) -> None:
        self.running = False
