"""n8n's outside effect: a workflow started through its production webhook."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from effects.registry import EffectCall, effect
from integrations.connections import connection_credentials, connection_require
from integrations.n8n.client import N8nClient
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant


class TriggerPayload(BaseModel):
    webhook_path: str
    body: dict[str, Any]


def n8n_client_for(*, tenant: Tenant) -> N8nClient:
    connection = connection_require(tenant=tenant, provider="n8n")
    credentials = connection_credentials(connection)
    return N8nClient(base_url=connection.config["base_url"], api_key=credentials["api_key"])


def _triggered(done: list[tuple[EffectCall, dict[str, Any]]]) -> None:
    for call, _ in done:
        tenant_event_emit(
            tenant=call.tenant,
            topic="n8n.automation.trigger",
            event_type="n8n.workflow.triggered",
            data={"webhook_path": call.payload.webhook_path},
            key=call.payload.webhook_path,
            source="integrations.n8n",
            trace_id=call.trace_id,
        )


@effect("n8n.trigger_workflow", payload=TriggerPayload, on_done=_triggered)
def trigger_workflow(call: EffectCall) -> dict[str, Any]:
    p: TriggerPayload = call.payload
    response = call.client("n8n", lambda: n8n_client_for(tenant=call.tenant)).trigger_webhook(
        p.webhook_path, p.body, idempotency_key=call.idempotency_key
    )
    return {"response": response}
