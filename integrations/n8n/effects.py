"""n8n's outside effect: a workflow started through its production webhook."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from effects.registry import EffectCall, effect
from integrations.connections import connection_credentials, connection_require
from integrations.models import N8nTrigger
from integrations.n8n.client import N8nClient
from integrations.n8n.triggers import trigger_auth_headers
from smarteros.errors import NotFound
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant


class TriggerPayload(BaseModel):
    webhook_path: str
    body: dict[str, Any]
    # The N8nTrigger a forward is for (its secret authenticates the post); None for a direct
    # n8n_trigger_workflow call.
    trigger_id: int | None = None


def _auth_headers(call: EffectCall) -> dict[str, str]:
    trigger_id = call.payload.trigger_id
    if trigger_id is None:
        return {}
    trigger = N8nTrigger.objects.filter(tenant=call.tenant, pk=trigger_id).first()
    if trigger is None:
        raise NotFound(f"n8n trigger {trigger_id} was deleted; its forwards are not sent")
    return trigger_auth_headers(trigger)


def n8n_client_for(*, tenant: Tenant) -> N8nClient:
    connection = connection_require(tenant=tenant, provider="n8n")
    credentials = connection_credentials(connection)
    return N8nClient.of(connection.config, credentials)


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
        p.webhook_path,
        p.body,
        idempotency_key=call.idempotency_key,
        auth_headers=_auth_headers(call),
    )
    return {"response": response}
