"""One telemetry record per operation call, sent through the outbox to `mcp.agent.telemetry`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit
from tenants.scope import tenant_scope

if TYPE_CHECKING:
    from mcp_tools.context import OperationContext

TELEMETRY_TOPIC = "mcp.agent.telemetry"
ACTIONS_TOPIC = "mcp.agent.actions"


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
    """Queue the call's telemetry and action events; committed on their own, so rejected calls
    (which changed nothing) are recorded too."""
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
    with tenant_scope(tenant.pk):
        telemetry = Envelope(
            type="operation.called",
            source="mcp_tools.executor",
            tenant=tenant.slug,
            trace_id=ctx.trace_id,
            data=data,
        )
        outbox_emit(topic=TELEMETRY_TOPIC, envelope=telemetry, key=tenant.slug, tenant_id=tenant.pk)
        action = Envelope(
            type="agent.action",
            source="mcp_tools.executor",
            tenant=tenant.slug,
            trace_id=ctx.trace_id,
            data={k: data[k] for k in ("operation", "surface", "status", "session_id")},
        )
        outbox_emit(
            topic=ACTIONS_TOPIC,
            envelope=action,
            key=ctx.session_id or tenant.slug,
            tenant_id=tenant.pk,
        )
