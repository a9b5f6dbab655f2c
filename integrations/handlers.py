"""The flows, as consumer handlers on the tenants' topics.

shopify.webhooks -> the n8n workflows subscribed to it (n8n.automation.trigger)
n8n.automation.result -> a WhatsApp message (whatsapp.outbound)
whatsapp.inbound -> the bot's LLM reply -> whatsapp.outbound

A flow whose integration is not connected dead-letters with that reason; it never pretends.
"""

from __future__ import annotations

import logging

from integrations.models import N8nTrigger
from smarteros.events.consumers import handles
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant

log = logging.getLogger(__name__)


def _tenant(envelope: Envelope) -> Tenant:
    return Tenant.objects.get(slug=envelope.tenant)


def n8n_forward(*, tenant: Tenant, topic: str, envelope: Envelope) -> int:
    """Post `envelope` to every n8n workflow subscribed to `topic`; returns how many."""
    from integrations.connections import connection_credentials, connection_require
    from integrations.n8n.client import N8nClient

    triggers = list(
        N8nTrigger.objects.filter(
            tenant=tenant, topic=topic, event_type__in=["", envelope.type]
        ).order_by("pk")
    )
    if not triggers:
        return 0
    connection = connection_require(tenant=tenant, provider="n8n")
    client = N8nClient(
        base_url=connection.config["base_url"],
        api_key=connection_credentials(connection)["api_key"],
    )
    for trigger in triggers:
        client.trigger_webhook(trigger.webhook_path, {"event": envelope.model_dump(mode="json")})
        tenant_event_emit(
            tenant=tenant,
            topic="n8n.automation.trigger",
            event_type="n8n.workflow.triggered",
            data={"webhook_path": trigger.webhook_path},
            key=trigger.webhook_path,
            source="integrations.handlers",
            trace_id=envelope.trace_id,
        )
    return len(triggers)


@handles("*.shopify.webhooks", "shopify.webhook.received", group="flow-shopify-n8n")
def shopify_webhook_to_n8n(envelope: Envelope) -> None:
    n8n_forward(tenant=_tenant(envelope), topic="shopify.webhooks", envelope=envelope)


@handles("*.n8n.automation.result", "n8n.workflow.result", group="flow-n8n-whatsapp")
def n8n_result_to_whatsapp(envelope: Envelope) -> None:
    from integrations.whatsapp.services import whatsapp_message_send

    to, text = envelope.data.get("whatsapp_to"), envelope.data.get("whatsapp_text")
    if to and text:
        whatsapp_message_send(
            tenant=_tenant(envelope), to=to, text=text, trace_id=envelope.trace_id
        )


@handles("*.whatsapp.inbound", "whatsapp.message.received", group="flow-whatsapp-bot")
def whatsapp_inbound_to_bot(envelope: Envelope) -> None:
    from integrations.whatsapp.services import bot_configured, whatsapp_bot_reply

    tenant = _tenant(envelope)
    if not bot_configured(tenant=tenant):
        log.info(
            "tenant %s has no bot (no llm_api_key); inbound message left for people", tenant.slug
        )
        return
    whatsapp_bot_reply(tenant=tenant, phone=envelope.data["from"], trace_id=envelope.trace_id)
