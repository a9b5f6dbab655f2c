"""WhatsApp writes shared by the operations and the event handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Subquery

from integrations.connections import connection_credentials, connection_require
from integrations.deliveries import delivery_claim
from integrations.llm.client import LlmReply
from integrations.llm.services import llm_configured, llm_reply, llm_sample
from integrations.models import IntegrationConnection, WhatsAppMessage
from integrations.whatsapp.schemas import MessagesValue, Status
from mcp_tools.errors import InvalidInput
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant

if TYPE_CHECKING:
    from effects.models import Effect
    from mcp_tools.context import SampleFn

DEFAULT_BOT_PROMPT = (
    "You are the shop's WhatsApp assistant. Answer briefly and politely in the customer's language."
)


def whatsapp_connection(*, tenant: Tenant) -> tuple[IntegrationConnection, dict[str, str]]:
    connection = connection_require(tenant=tenant, provider="whatsapp")
    return connection, connection_credentials(connection)


def _emit(
    tenant: Tenant, topic: str, event_type: str, phone: str, data: dict[str, Any], trace_id: str
) -> None:
    tenant_event_emit(
        tenant=tenant,
        topic=topic,
        event_type=event_type,
        data=data,
        key=phone,
        source="integrations.whatsapp",
        trace_id=trace_id,
    )


def whatsapp_message_send(
    *,
    tenant: Tenant,
    to: str,
    text: str,
    key: str,
    trace_id: str,
    preview_url: bool = False,
    inline: bool = False,
    checked: bool = False,
) -> Effect:
    """Record the send of a text message, once per `key`, in the caller's transaction; it goes
    out after commit (see effects), and is then stored and published on whatsapp.outbound."""
    from effects.services import effect_record

    if not checked:  # the caller made sure WhatsApp is connected
        connection_require(tenant=tenant, provider="whatsapp")
    return effect_record(
        tenant=tenant,
        kind="whatsapp.send_message",
        key=key,
        payload={"to": to, "text": text, "preview_url": preview_url},
        trace_id=trace_id,
        inline=inline,
    )


def whatsapp_message_receive(
    *, tenant: Tenant, phone: str, text: str, message_id: str, trace_id: str
) -> tuple[WhatsAppMessage, bool]:
    """Store an inbound message once per WhatsApp message id and publish it on whatsapp.inbound.
    Runs in the caller's tenant_scope: the dedupe row, the message and the event commit together."""
    connection_require(tenant=tenant, provider="whatsapp")
    first = delivery_claim(tenant=tenant, provider="whatsapp", delivery_id=message_id)
    # The message's own unique id guards messages stored before delivery rows existed.
    message, created = WhatsAppMessage.objects.get_or_create(
        tenant=tenant,
        provider_message_id=message_id,
        defaults={"phone": phone, "direction": WhatsAppMessage.Direction.INBOUND, "text": text},
    )
    created = created and first
    if created:
        _emit(
            tenant,
            "whatsapp.inbound",
            "whatsapp.message.received",
            phone,
            {"from": phone, "text": text, "message_id": message_id},
            trace_id,
        )
    return message, created


def whatsapp_status_receive(*, tenant: Tenant, status: Status, trace_id: str) -> bool:
    """Publish a status of one of the tenant's sent messages (sent, delivered, read, failed) on
    whatsapp.outbound, once per message id and status; False if it is a repeat."""
    if not delivery_claim(
        tenant=tenant, provider="whatsapp", delivery_id=f"{status.id}:{status.status}"
    ):
        return False
    phone = f"+{status.recipient_id}" if status.recipient_id else ""
    data: dict[str, Any] = {"message_id": status.id, "status": status.status, "to": phone}
    if status.errors:
        data["errors"] = status.errors
    _emit(
        tenant, "whatsapp.outbound", "whatsapp.message.status", phone or status.id, data, trace_id
    )
    return True


@dataclass(frozen=True)
class NotificationAccepted:
    messages: int  # new text messages stored
    statuses: int  # new statuses published
    repeats: int  # messages and statuses accepted before
    ignored: int  # messages of other types, not stored


def whatsapp_notification_accept(
    *, tenant: Tenant, values: list[MessagesValue], trace_id: str
) -> NotificationAccepted:
    """Accept the messages and statuses of a verified notification, each once by its id."""
    messages = statuses = repeats = ignored = 0
    for value in values:
        for message in value.messages:
            if message.type != "text" or message.text is None:
                ignored += 1
                continue
            _, created = whatsapp_message_receive(
                tenant=tenant,
                phone=f"+{message.from_}",
                text=message.text.body,
                message_id=message.id,
                trace_id=trace_id,
            )
            messages, repeats = messages + created, repeats + (not created)
        for status in value.statuses:
            created = whatsapp_status_receive(tenant=tenant, status=status, trace_id=trace_id)
            statuses, repeats = statuses + created, repeats + (not created)
    return NotificationAccepted(messages, statuses, repeats, ignored)


def bot_configured(*, tenant: Tenant) -> bool:
    return llm_configured(tenant=tenant)


def whatsapp_bot_reply_record(*, tenant: Tenant, phone: str, answers: str, trace_id: str) -> Effect:
    """Record the bot's reply to inbound message `answers` (its WhatsApp id): written by the
    LLM and sent after commit, once per inbound message."""
    from effects.services import effect_record

    return effect_record(
        tenant=tenant,
        kind="whatsapp.bot_reply",
        key=answers,
        payload={"phone": phone, "answers": answers},
        trace_id=trace_id,
    )


def bot_reply_write(
    *,
    tenant: Tenant,
    phone: str,
    answers: str | None = None,
    instructions: str | None = None,
    history: int = 20,
    origin: str = "whatsapp_create_bot_response",
    trace_id: str = "",
    sample: SampleFn | None = None,
) -> LlmReply:
    """Have the LLM write a reply to the conversation with `phone`: up to inbound message
    `answers` if given, else up to now, whose last message must be the customer's. With
    `sample` (an MCP client offering sampling) the client's model writes it instead."""
    connection = connection_require(tenant=tenant, provider="whatsapp")
    messages = WhatsAppMessage.objects.filter(tenant=tenant, phone=phone)
    if answers is not None:
        answered = messages.filter(provider_message_id=answers).values_list("pk", flat=True)
        messages = messages.filter(pk__lte=Subquery(answered[:1]))
    recent = list(messages.order_by("-created_at", "-id")[:history])
    recent.reverse()
    if not recent or recent[-1].direction != WhatsAppMessage.Direction.INBOUND:
        raise InvalidInput(f"phone: no customer message from {phone} is waiting for a reply")
    system = connection.config.get("bot_prompt") or DEFAULT_BOT_PROMPT
    if instructions:
        system += "\n" + instructions
    turns = [
        {"role": "user" if m.direction == "inbound" else "assistant", "content": m.text}
        for m in recent
    ]
    if sample is not None and (
        sampled := llm_sample(sample=sample, system=system, messages=_alternating(turns))
    ):
        return sampled
    return llm_reply(
        tenant=tenant,
        system=system,
        messages=_alternating(turns),
        origin=origin,
        trace_id=trace_id,
    )


def _alternating(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    # The Messages API wants alternating roles starting with the user.
    merged: list[dict[str, str]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"] += "\n" + message["content"]
        else:
            merged.append(dict(message))
    while merged and merged[0]["role"] != "user":
        merged.pop(0)
    return merged
