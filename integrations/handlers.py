"""The flows, as consumer handlers on the tenants' topics.

shopify.webhooks -> the n8n workflows subscribed to it (n8n.automation.trigger)
n8n.automation.result -> a WhatsApp message (whatsapp.outbound)
whatsapp.inbound -> the bot's LLM reply -> whatsapp.outbound

Handlers call no provider: they record the effects they want (effects/) in the batch's
transaction, keyed by the event (or the message) they answer, and workers perform them after
commit. A replayed batch finds its effects recorded already. A flow whose integration is not
connected dead-letters with that reason; it never pretends.
"""

from __future__ import annotations

import logging

from effects.services import effect_record
from integrations.connections import connection_require
from integrations.models import N8nTrigger
from smarteros.events.consumers import handles
from smarteros.events.envelope import Envelope
from tenants.models import Tenant

log = logging.getLogger(__name__)


def _tenant(envelope: Envelope) -> Tenant:
    return Tenant.objects.get(slug=envelope.tenant)


def n8n_forward(*, tenant: Tenant, topic: str, envelope: Envelope) -> int:
    """Record a post of `envelope` to every n8n workflow subscribed to `topic`, each once per
    event and workflow; returns how many."""
    triggers = list(
        N8nTrigger.objects.filter(
            tenant=tenant, topic=topic, event_type__in=["", envelope.type]
        ).order_by("pk")
    )
    if not triggers:
        return 0
    connection_require(tenant=tenant, provider="n8n")
    body = {"event": envelope.model_dump(mode="json")}
    for trigger in triggers:
        effect_record(
            tenant=tenant,
            kind="n8n.trigger_workflow",
            key=f"{envelope.id}:{trigger.webhook_path}",
            payload={"webhook_path": trigger.webhook_path, "body": body},
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
            tenant=_tenant(envelope), to=to, text=text, key=envelope.id, trace_id=envelope.trace_id
        )


@handles("*.whatsapp.inbound", "whatsapp.message.received", group="flow-whatsapp-bot")
def whatsapp_inbound_to_bot(envelope: Envelope) -> None:
    from integrations.whatsapp.services import bot_configured, whatsapp_bot_reply_record

    tenant = _tenant(envelope)
    if not bot_configured(tenant=tenant):
        log.info(
            "tenant %s has no bot (no llm_api_key); inbound message left for people", tenant.slug
        )
        return
    whatsapp_bot_reply_record(
        tenant=tenant,
        phone=envelope.data["from"],
        answers=envelope.data["message_id"],
        trace_id=envelope.trace_id,
    )
