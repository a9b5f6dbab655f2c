"""n8n writes shared by the webhook endpoint and the operations."""

from __future__ import annotations

from integrations.deliveries import delivery_event_accept
from integrations.n8n.schemas import N8nResultIn
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import tenant_event
from tenants.models import Tenant


def n8n_result_accept(*, tenant: Tenant, result: N8nResultIn, trace_id: str) -> Envelope | None:
    """Queue a workflow result for the tenant's n8n.automation.result topic, once per execution
    id; None if that execution's result was accepted before (the dedupe row commits with the
    event)."""
    event = tenant_event(
        tenant=tenant,
        topic="n8n.automation.result",
        event_type="n8n.workflow.result",
        data=result.model_dump(mode="json", by_alias=True, exclude_none=True),
        key=str(result.whatsapp_to or result.workflow or tenant.slug),
        source="integrations.n8n",
        trace_id=trace_id,
    )
    return delivery_event_accept(
        tenant=tenant, provider="n8n", delivery_id=result.execution_id, event=event
    )
