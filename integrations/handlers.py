"""The flows, as consumer handlers on the tenants' topics.

every topic of integrations.n8n.topics -> the n8n workflows subscribed to it (n8n.automation.trigger)
n8n.automation.result -> a WhatsApp message (whatsapp.outbound)
whatsapp.inbound -> the bot's LLM reply -> whatsapp.outbound

Handlers call no provider: they record the effects they want (effects/) in the batch's
transaction, keyed by the event (or the message) they answer, and workers perform them after
commit. A replayed batch finds its effects recorded already. A flow whose integration is not
connected dead-letters with that reason; it never pretends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from effects.services import effect_record
from integrations.connections import connection_require
from integrations.models import N8nTrigger
from integrations.n8n.topics import FORWARD_GROUP, FORWARDED_TOPICS
from integrations.subscribed import tenants_connected, tenants_with_triggers
from smarteros.events.consumers import handles
from smarteros.events.envelope import Envelope
from tenants.models import Tenant

log = logging.getLogger(__name__)


_RECENT_SECONDS = 5.0
_recent: dict[tuple[str, str], tuple[float, Any]] = {}


def _remembered(key: tuple[str, str], load: Callable[[], Any]) -> Any:
    """`load()`, remembered for a few seconds: a batch asks the same for each of its events.
    Only for what may lag that long (a tenant row, whether an integration is connected)."""
    now = time.monotonic()
    known = _recent.get(key)
    if known is not None and known[0] > now:
        return known[1]
    value = load()
    _recent[key] = (now + _RECENT_SECONDS, value)
    return value


def _tenant(envelope: Envelope) -> Tenant:
    slug = envelope.tenant or ""
    return _remembered(("tenant", slug), lambda: Tenant.objects.get(slug=slug))  # type: ignore[no-any-return]


def _require_connected(tenant: Tenant, provider: str) -> None:
    """Dead-letter (NotConnected) now rather than record an effect that cannot be performed.
    A connection removed a moment ago still passes; its effects then fail with that reason."""
    _remembered(
        (f"connected:{tenant.pk}", provider),
        lambda: connection_require(tenant=tenant, provider=provider).pk,
    )


def n8n_forward(*, tenant: Tenant, topic: str, envelope: Envelope) -> int:
    """Record a post of `envelope` to every n8n workflow subscribed to `topic` when the event
    happened, each once per event and workflow; returns how many. (A topic is read from its
    start when its first trigger makes the group subscribe: older events are not forwarded.)"""
    triggers = list(
        N8nTrigger.objects.filter(
            tenant=tenant,
            topic=topic,
            event_type__in=["", envelope.type],
            created_at__lte=envelope.time,
        ).order_by("pk")
    )
    if not triggers:
        return 0
    _require_connected(tenant, "n8n")
    body = {"event": envelope.model_dump(mode="json")}
    for trigger in triggers:
        effect_record(
            tenant=tenant,
            kind="n8n.trigger_workflow",
            key=f"{envelope.id}:{trigger.webhook_path}",
            # The trigger's id, not its secret: the effect decrypts the secret when it posts.
            payload={"webhook_path": trigger.webhook_path, "body": body, "trigger_id": trigger.pk},
            trace_id=envelope.trace_id,
        )
    return len(triggers)


def _n8n_forwarder(topic: str) -> Callable[[Envelope], None]:
    def forward(envelope: Envelope) -> None:
        n8n_forward(tenant=_tenant(envelope), topic=topic, envelope=envelope)

    forward.__name__ = forward.__qualname__ = f"n8n_forward_{topic.replace('.', '_')}"
    return forward


# Every topic a trigger may watch, every event type (a trigger's own filter picks its types).
for _topic in FORWARDED_TOPICS:
    handles(f"*.{_topic}", group=FORWARD_GROUP, needed_by=tenants_with_triggers(_topic))(
        _n8n_forwarder(_topic)
    )


# Results come from n8n's webhook, inbound messages from WhatsApp's: only connected tenants have any.
@handles(
    "*.n8n.automation.result",
    "n8n.workflow.result",
    group="flow-n8n-whatsapp",
    needed_by=tenants_connected("n8n"),
)
def n8n_result_to_whatsapp(envelope: Envelope) -> None:
    from integrations.whatsapp.services import whatsapp_message_send

    to, text = envelope.data.get("whatsapp_to"), envelope.data.get("whatsapp_text")
    if to and text:
        tenant = _tenant(envelope)
        _require_connected(tenant, "whatsapp")
        whatsapp_message_send(
            tenant=tenant,
            to=to,
            text=text,
            key=envelope.id,
            trace_id=envelope.trace_id,
            checked=True,
        )


@handles(
    "*.whatsapp.inbound",
    "whatsapp.message.received",
    group="flow-whatsapp-bot",
    needed_by=tenants_connected("whatsapp"),
)
def whatsapp_inbound_to_bot(envelope: Envelope) -> None:
    from integrations.whatsapp.services import bot_configured, whatsapp_bot_reply_record

    tenant = _tenant(envelope)
    if not _remembered((f"bot:{tenant.pk}", ""), lambda: bot_configured(tenant=tenant)):
        log.info(
            "tenant %s has no bot (no LLM connected); inbound message left for people", tenant.slug
        )
        return
    whatsapp_bot_reply_record(
        tenant=tenant,
        phone=envelope.data["from"],
        answers=envelope.data["message_id"],
        trace_id=envelope.trace_id,
    )
