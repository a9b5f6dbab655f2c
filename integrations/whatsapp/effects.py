"""WhatsApp's outside effects: a message sent, and the bot's reply to an inbound message."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from effects.registry import EffectCall, effect
from integrations.models import WhatsAppMessage
from integrations.whatsapp.client import GRAPH_BASE_URL, WhatsAppClient
from integrations.whatsapp.services import bot_reply_write, whatsapp_connection
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant


class SendMessagePayload(BaseModel):
    to: str
    text: str
    preview_url: bool = False


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


def _store_sent(tenant: Tenant, to: str, text: str, message_id: str, trace_id: str) -> None:
    WhatsAppMessage.objects.get_or_create(
        tenant=tenant,
        provider_message_id=message_id,
        defaults={"phone": to, "direction": WhatsAppMessage.Direction.OUTBOUND, "text": text},
    )
    tenant_event_emit(
        tenant=tenant,
        topic="whatsapp.outbound",
        event_type="whatsapp.message.sent",
        data={"to": to, "text": text, "message_id": message_id},
        key=to,
        source="integrations.whatsapp",
        trace_id=trace_id,
    )


def _message_sent(call: EffectCall, result: dict[str, Any]) -> None:
    p: SendMessagePayload = call.payload
    _store_sent(call.tenant, p.to, p.text, result["message_id"], call.trace_id)


@effect("whatsapp.send_message", payload=SendMessagePayload, on_done=_message_sent)
def send_message(call: EffectCall) -> dict[str, Any]:
    p: SendMessagePayload = call.payload
    message_id = whatsapp_client(tenant=call.tenant).send_text(
        to=p.to, body=p.text, preview_url=p.preview_url, idempotency_key=call.idempotency_key
    )
    return {"message_id": message_id}


def _reply_sent(call: EffectCall, result: dict[str, Any]) -> None:
    if result.get("message_id"):
        p: BotReplyPayload = call.payload
        _store_sent(call.tenant, p.phone, result["text"], result["message_id"], call.trace_id)


@effect("whatsapp.bot_reply", payload=BotReplyPayload, on_done=_reply_sent)
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
    )
    result: dict[str, Any] = {
        "text": reply.text[:4096],
        "model": reply.model,
        "tokens_in": reply.tokens_in,
        "tokens_out": reply.tokens_out,
        "message_id": "",
    }
    if reply.text:
        result["message_id"] = whatsapp_client(tenant=call.tenant).send_text(
            to=p.phone, body=result["text"], idempotency_key=call.idempotency_key
        )
    return result
