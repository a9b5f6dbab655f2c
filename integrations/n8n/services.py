"""n8n writes shared by the webhook endpoint and the operations."""

from __future__ import annotations

from integrations.deliveries import delivery_claim
from integrations.n8n.schemas import N8nResultIn
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant


def n8n_result_accept(*, tenant: Tenant, result: N8nResultIn, trace_id: str) -> Envelope | None:
    """Queue a workflow result for the tenant's n8n.automation.result topic, once per execution
    id; None if that execution's result was accepted before. Runs in the caller's tenant_scope."""
    if not delivery_claim(tenant=tenant, provider="n8n", delivery_id=result.execution_id):
        return None
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return tenant_event_emit(
        tenant=tenant,
        topic="n8n.automation.result",
        event_type="n8n.workflow.result",
        data=data,
        key=str(result.whatsapp_to or result.workflow or tenant.slug),
        source="integrations.n8n",
        trace_id=trace_id,
    )
