"""One telemetry record per operation call, produced to `mcp.agent.telemetry` (and an action
record to `mcp.agent.actions`).

These records describe calls rather than change state, so they go straight to Kafka through the
process's idempotent producer instead of the outbox: a call pays no database round trip for them.
While the broker is away librdkafka keeps them queued in memory (no delivery timeout) and sends
them when it returns; the producer is flushed when the process exits.
"""

from __future__ import annotations

import atexit
import logging
from typing import TYPE_CHECKING, Any

from smarteros.context import new_trace_id
from smarteros.events.envelope import Envelope
from smarteros.infra.kafka import get_telemetry_producer

if TYPE_CHECKING:
    from mcp_tools.context import OperationContext

log = logging.getLogger(__name__)

TELEMETRY_TOPIC = "mcp.agent.telemetry"
ACTIONS_TOPIC = "mcp.agent.actions"
_flush_registered = False


def _on_delivery(err: Any, msg: Any) -> None:
    if err is not None:
        log.error("telemetry record not delivered to %s: %s", msg.topic(), err)


def _produce(topic: str, key: str, envelope: Envelope) -> None:
    global _flush_registered
    producer = get_telemetry_producer()
    if not _flush_registered:
        atexit.register(producer.flush, 10)
        _flush_registered = True
    try:
        producer.produce(
            topic,
            key=key.encode(),
            value=envelope.to_bytes(),
            headers=[
                ("event-type", envelope.type.encode()),
                ("tenant", (envelope.tenant or "").encode()),
            ],
            on_delivery=_on_delivery,
        )
    except BufferError:
        log.error(
            "telemetry queue full (broker unreachable for long); dropping a record for %s", topic
        )
    producer.poll(0)


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
