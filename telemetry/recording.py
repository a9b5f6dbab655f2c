"""One telemetry record per operation call, produced to `mcp.agent.telemetry` (and an action
record to `mcp.agent.actions`).

These records describe calls rather than change state, so they go straight to Kafka through the
process's idempotent producer instead of the outbox: a call pays no database round trip for them.
While the broker is away librdkafka keeps them queued in memory and sends them when it returns;
a record not acknowledged within KAFKA_TELEMETRY_RESEND_MS is sent again through a new producer
(the old one may be wedged for good), never dropped. They are flushed when the process exits,
and by the web server as the last step of its shutdown (flushed_at_shutdown), once nothing
serves calls any more.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException

from smarteros.context import new_trace_id
from smarteros.events.envelope import Envelope
from smarteros.events.relay_errors import is_message_fault
from smarteros.infra.kafka import get_telemetry_producer

if TYPE_CHECKING:
    from mcp_tools.context import OperationContext

log = logging.getLogger(__name__)

TELEMETRY_TOPIC = "mcp.agent.telemetry"
ACTIONS_TOPIC = "mcp.agent.actions"
_flush_registered = False


# Records to send again, and whether the current producer is to be replaced first: a record
# not acknowledged in time, or a producer failed for good, means it may never deliver again (an
# idempotent producer whose broker came back without its producer state retries forever).
_resend: list[tuple[str, bytes | None, bytes, list[Any]]] = []
_replace = False
_lock = threading.Lock()
_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})


def _on_delivery(err: Any, msg: Any) -> None:
    global _replace
    if err is None:
        return
    if err.code() != KafkaError._FATAL and is_message_fault(err, catalog_topic=True):
        log.error("telemetry record not delivered to %s: %s", msg.topic(), err)
        return
    # Not the record's fault (timed out, fenced, fatal): the producer is replaced first, unless
    # this record is one the replacement purged from it.
    with _lock:
        _resend.append((msg.topic(), msg.key(), msg.value(), list(msg.headers() or [])))
        _replace = _replace or err.code() not in _PURGED


def _produce(topic: str, key: str, envelope: Envelope) -> None:
    headers = [
        ("event-type", envelope.type.encode()),
        ("tenant", (envelope.tenant or "").encode()),
    ]
    _send(topic, key.encode(), envelope.to_bytes(), headers)


def telemetry_flush(timeout: float) -> int:
    """Send what waits and wait up to `timeout` seconds for the broker; how many remain."""
    deadline = time.monotonic() + timeout
    while True:
        _resend_waiting()
        producer = get_telemetry_producer()
        try:
            left = producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        except KafkaException as exc:
            _failed_for_good(exc)
            left = len(producer)
        with _lock:
            left += len(_resend)
        if not left or time.monotonic() >= deadline:
            return left


@contextlib.asynccontextmanager
async def flushed_at_shutdown() -> AsyncIterator[None]:
    """A lifespan hook of the web server: what the process still holds goes to the broker
    before it exits (up to 10 s)."""
    try:
        yield
    finally:
        left = await asyncio.to_thread(telemetry_flush, 10)
        if left:
            log.error("%d telemetry records not acknowledged at shutdown; they are lost", left)


def _send(topic: str, key: bytes | None, value: bytes, headers: list[Any]) -> None:
    global _flush_registered
    _resend_waiting()
    producer = get_telemetry_producer()
    if not _flush_registered:
        atexit.register(telemetry_flush, 10)
        _flush_registered = True
    try:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=_on_delivery)
    except BufferError:
        log.error(
            "telemetry queue full (broker unreachable for long); dropping a record for %s", topic
        )
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._FATAL:
            raise
        with _lock:
            _resend.append((topic, key, value, headers))
            global _replace
            _replace = True
        _resend_waiting()
    _serve(producer)


def _serve(producer: Any) -> None:
    """Serve the producer's delivery reports (a fatal error is raised from them once)."""
    try:
        producer.poll(0)
    except KafkaException as exc:
        _failed_for_good(exc)


def _failed_for_good(exc: KafkaException) -> None:
    """A fatal error raised from poll or flush (a restored broker refusing the producer's
    sequence): replace the producer; its records come back through their delivery reports."""
    global _replace
    if not exc.args[0].fatal():
        raise exc
    log.warning("telemetry producer failed for good: %s", exc.args[0].str())
    with _lock:
        _replace = True


def _resend_waiting() -> None:
    """Replace the producer if it gave up, then send again what it did not deliver."""
    global _replace
    with _lock:
        replace, _replace = _replace, False
    if replace:
        log.warning("telemetry producer gave up on records; replacing it and sending them again")
        dead = get_telemetry_producer()
        get_telemetry_producer.cache_clear()
        dead.purge(in_queue=True, in_flight=True)
        # Its delivery reports hand what it held over to _resend; a fatal error raised while
        # serving them stops the serving, so serve until nothing is raised.
        for _ in range(10):
            try:
                dead.poll(0)
                break
            except KafkaException:
                continue
    with _lock:
        waiting = list(_resend)
        _resend.clear()
    producer = get_telemetry_producer()
    for topic, key, value, headers in waiting:
        try:
            producer.produce(topic, key=key, value=value, headers=headers, on_delivery=_on_delivery)
        except BufferError:
            log.error("telemetry queue full; dropping a record for %s", topic)


def operation_call_record(
    *,
    operation: str,
    service: str,
    ctx: OperationContext,
    status: str,
    error_type: str,
    latency_ms: float,
    input_bytes: int,
    output_bytes: int,
) -> None:
    """Queue the call's telemetry and action records, rejected calls included."""
    tenant = ctx.tenant
    data = {
        "operation": operation,
        "service": service,
        "surface": ctx.surface,
        "status": status,
        "error_type": error_type,
        "latency_ms": round(latency_ms, 3),
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "model": ctx.model,
        "tokens_in": ctx.tokens_in,
        "tokens_out": ctx.tokens_out,
        "session_id": ctx.session_id,
        "api_key": ctx.principal.api_key.prefix,
    }
    source = "mcp_tools.executor"
    _produce(
        TELEMETRY_TOPIC,
        tenant.slug,
        Envelope(
            type="operation.called",
            source=source,
            tenant=tenant.slug,
            trace_id=ctx.trace_id,
            data=data,
        ),
    )
    action = {k: data[k] for k in ("operation", "surface", "status", "session_id")}
    _produce(
        ACTIONS_TOPIC,
        ctx.session_id or tenant.slug,
        Envelope(
            type="agent.action",
            source=source,
            tenant=tenant.slug,
            trace_id=ctx.trace_id,
            data=action,
        ),
    )


def llm_usage_record(
    *,
    tenant: str,
    provider: str,
    model: str,
    tokens_in: int,
    tokens_out: int,
    origin: str,
    trace_id: str,
) -> None:
    """Queue the token usage of one LLM reply (the sink stores it in llm_usage). `origin` says
    what asked for it: an operation's name or an effect's kind."""
    _produce(
        TELEMETRY_TOPIC,
        tenant,
        Envelope(
            type="llm.usage",
            source="integrations.llm",
            tenant=tenant,
            trace_id=trace_id or new_trace_id(),
            data={
                "provider": provider,
                "model": model,
                "origin": origin,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
            },
        ),
    )
