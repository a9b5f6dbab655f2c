"""WhatsApp's outside effects: a message sent, and the bot's reply to an inbound message."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from effects.registry import EffectCall, effect
from integrations.models import WhatsAppMessage
from integrations.whatsapp.client import GRAPH_BASE_URL, WhatsAppClient
from integrations.whatsapp.services import (
    bot_reply_write,
    whatsapp_connection,
    whatsapp_statuses_catch_up,
)
from smarteros.context import new_trace_id
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit_many
from tenants.models import Tenant


class SendMessagePayload(BaseModel):
    to: str
    text: str
    preview_url: bool = False


class SendTemplatePayload(BaseModel):
    to: str
    name: str
    language: str
    components: list[dict[str, Any]] = []
    summary: str  # what the conversation shows for it: the template and its text parameters


class BotReplyPayload(BaseModel):
    phone: str
    answers: str  # the inbound message's WhatsApp id: one reply per customer message
    instructions: str | None = None
    history: int = 20


def whatsapp_client(*, tenant: Tenant) -> WhatsAppClient:
    connection, credentials = whatsapp_connection(tenant=tenant)
    return WhatsAppClient(
        phone_number_id=connection.config["phone_number_id"],
        access_token=credentials["access_token"],
        base_url=connection.config.get("api_base_url") or GRAPH_BASE_URL,
    )


Sent = tuple[str, str, str, str]  # to, text, WhatsApp message id, trace id


def _store_sent(tenant: Tenant, sent: list[Sent]) -> None:
    """Store sent messages and publish them on whatsapp.outbound: two statements for them all.
    A message id already stored is left as it is."""
    WhatsAppMessage.objects.bulk_create(
        [
            WhatsAppMessage(
                tenant=tenant,
                provider_message_id=message_id,
                phone=to,
                direction=WhatsAppMessage.Direction.OUTBOUND,
                text=text,
            )
            for to, text, message_id, _ in sent
        ],
        ignore_conflicts=True,
    )
    whatsapp_statuses_catch_up(tenant=tenant, message_ids=[s[2] for s in sent])
    outbox_emit_many(
        [
            (
                f"{tenant.slug}.whatsapp.outbound",
                Envelope(
                    type="whatsapp.message.sent",
                    source="integrations.whatsapp",
                    tenant=tenant.slug,
                    trace_id=trace_id or new_trace_id(),
                    data={"to": to, "text": text, "message_id": message_id},
                ),
                to,
            )
            for to, text, message_id, trace_id in sent
        ],
        tenant_id=tenant.pk,
    )


def _messages_sent(done: list[tuple[EffectCall, dict[str, Any]]]) -> None:
    _store_sent(
        done[0][0].tenant,
        [(c.payload.to, c.payload.text, r["message_id"], c.trace_id) for c, r in done],
    )


# Meta documents no idempotency for sends: after a lost answer, a retry could send twice.
@effect(
    "whatsapp.send_message",
    payload=SendMessagePayload,
    on_done=_messages_sent,
    retry_unknown=False,
)
def send_message(call: EffectCall) -> dict[str, Any]:
    p: SendMessagePayload = call.payload
    message_id = call.client("whatsapp", lambda: whatsapp_client(tenant=call.tenant)).send_text(
        to=p.to, body=p.text, preview_url=p.preview_url, idempotency_key=call.idempotency_key
    )
    return {"message_id": message_id}


def _templates_sent(done: list[tuple[EffectCall, dict[str, Any]]]) -> None:
    _store_sent(
        done[0][0].tenant,
        [(c.payload.to, c.payload.summary, r["message_id"], c.trace_id) for c, r in done],
    )


@effect(
    "whatsapp.send_template",
    payload=SendTemplatePayload,
    on_done=_templates_sent,
    retry_unknown=False,
)
def send_template(call: EffectCall) -> dict[str, Any]:
    """An approved template, sent once per key; Meta's refusals (a template that does not
    exist, a bad parameter) are permanent, its rate limits retried after their delay."""
    p: SendTemplatePayload = call.payload
    message_id = call.client("whatsapp", lambda: whatsapp_client(tenant=call.tenant)).send_template(
        to=p.to,
        name=p.name,
        language=p.language,
        components=p.components,
        idempotency_key=call.idempotency_key,
    )
    return {"message_id": message_id}


def _replies_sent(done: list[tuple[EffectCall, dict[str, Any]]]) -> None:
    sent = [(c.payload.phone, r["text"], r["message_id"], c.trace_id) for c, r in done]
    _store_sent(done[0][0].tenant, [s for s in sent if s[2]])


@effect("whatsapp.bot_reply", payload=BotReplyPayload, on_done=_replies_sent, retry_unknown=False)
def bot_reply(call: EffectCall) -> dict[str, Any]:
    """The LLM writes the reply (an attempt after a crash may ask it again: a cost, not an
    effect); the send is keyed to the inbound message, so the customer gets one reply."""
    p: BotReplyPayload = call.payload
    reply = bot_reply_write(
        tenant=call.tenant,
        phone=p.phone,
        answers=p.answers,
        instructions=p.instructions,
        history=p.history,
        origin="whatsapp.bot_reply",
        trace_id=call.trace_id,
    )
    result: dict[str, Any] = {
        "text": reply.text[:4096],
        "model": reply.model,
        "tokens_in": reply.tokens_in,
        "tokens_out": reply.tokens_out,
        "message_id": "",
    }
    if reply.text:
        result["message_id"] = call.client(
            "whatsapp", lambda: whatsapp_client(tenant=call.tenant)
        ).send_text(to=p.phone, body=result["text"], idempotency_key=call.idempotency_key)
    return result
