"""WhatsApp writes shared by the operations and the event handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Subquery

from integrations.connections import connection_credentials, connection_require
from integrations.deliveries import delivery_claim
from integrations.llm.client import LlmReply
from integrations.llm.services import llm_configured, llm_reply, llm_sample
from integrations.models import IntegrationConnection, WebhookDelivery, WhatsAppMessage
from integrations.whatsapp.errors import whatsapp_error_advice
from integrations.whatsapp.schemas import MessagesValue, Status
from smarteros.errors import InvalidInput
from smarteros.events.outbox import tenant_event_emit
from smarteros.parsing import parse_unix_time
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
    *,
    tenant: Tenant,
    phone: str,
    text: str,
    message_id: str,
    trace_id: str,
    kind: str = "text",
    content: dict[str, Any] | None = None,
    user_id: str | None = None,
    username: str = "",
) -> tuple[WhatsAppMessage, bool]:
    """Store an inbound message once per WhatsApp message id and publish it on whatsapp.inbound.
    `phone` is the conversation's address (+E.164, else the sender's BSUID); `kind` and
    `content` the message's type and typed content (a button's payload, a reply's id, a media
    id), `text` what a person reads of it. Runs in the caller's tenant_scope: the dedupe row,
    the message and the event commit together."""
    connection_require(tenant=tenant, provider="whatsapp")
    first = delivery_claim(tenant=tenant, provider="whatsapp", delivery_id=message_id)
    content = content if content is not None else {"body": text}
    # The message's own unique id guards messages stored before delivery rows existed.
    message, created = WhatsAppMessage.objects.get_or_create(
        tenant=tenant,
        provider_message_id=message_id,
        defaults={
            "phone": phone,
            "direction": WhatsAppMessage.Direction.INBOUND,
            "text": text,
            "kind": kind,
            "content": content,
        },
    )
    created = created and first
    if created:
        data: dict[str, Any] = {
            "from": phone,
            "text": text,
            "message_id": message_id,
            "kind": kind,
            "content": content,
        }
        if user_id:
            data["user_id"] = user_id
        if username:
            data["username"] = username
        _emit(tenant, "whatsapp.inbound", "whatsapp.message.received", phone, data, trace_id)
    return message, created


# A status never goes back: read does not return to delivered. Failed replaces sent or
# delivered (Meta reports it when delivery gives up), but not read: the customer saw it.
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 3}


def _lower_statuses(status: str) -> list[str]:
    rank = STATUS_RANK[status]
    return ["", *(s for s, r in STATUS_RANK.items() if r < rank)]


def _status_time(timestamp: str) -> datetime | None:
    return parse_unix_time(timestamp, field="timestamp") if timestamp else None


def whatsapp_message_status_store(
    *, tenant: Tenant, message_id: str, status: str, at: datetime | None, errors: list[Any]
) -> bool:
    """Record `status` on the tenant's sent message `message_id` unless it already has that
    status or a later one; one conditional UPDATE, so concurrent webhooks cannot regress it.
    True if the message changed."""
    if status not in STATUS_RANK:
        return False
    return bool(
        WhatsAppMessage.objects.filter(
            tenant=tenant,
            provider_message_id=message_id,
            direction=WhatsAppMessage.Direction.OUTBOUND,
            status__in=_lower_statuses(status),
        ).update(status=status, status_at=at, status_errors=errors)
    )


def whatsapp_statuses_catch_up(*, tenant: Tenant, message_ids: list[str]) -> None:
    """Statuses can arrive before the send that caused them is stored (Meta's webhook races the
    worker recording the send); those were accepted as deliveries `<wamid>:<status>`, so a
    freshly stored message takes the latest of them here."""
    claimed = WebhookDelivery.objects.filter(
        tenant=tenant,
        provider="whatsapp",
        delivery_id__in=[f"{m}:{s}" for m in message_ids for s in STATUS_RANK],
    ).values_list("delivery_id", "received_at")
    for delivery_id, received_at in sorted(
        claimed, key=lambda row: STATUS_RANK[row[0].rpartition(":")[2]]
    ):
        message_id, _, status = delivery_id.rpartition(":")
        whatsapp_message_status_store(
            tenant=tenant, message_id=message_id, status=status, at=received_at, errors=[]
        )


def whatsapp_status_receive(*, tenant: Tenant, status: Status, trace_id: str) -> bool:
    """Record a status of one of the tenant's sent messages (sent, delivered, read, failed with
    its errors) on the message, never going back, and publish it on whatsapp.outbound, once per
    message id and status; False if it is a repeat."""
    if not delivery_claim(
        tenant=tenant, provider="whatsapp", delivery_id=f"{status.id}:{status.status}"
    ):
        return False
    errors = [error.model_dump(mode="json") for error in status.errors]
    stored = whatsapp_message_status_store(
        tenant=tenant,
        message_id=status.id,
        status=status.status,
        at=_status_time(status.timestamp),
        errors=errors,
    )
    phone = f"+{status.recipient_id}" if status.recipient_id else status.recipient_user_id or ""
    data: dict[str, Any] = {
        "message_id": status.id,
        "status": status.status,
        "to": phone,
        "timestamp": status.timestamp,
        "stored": stored,
    }
    if errors:
        data["errors"] = [
            {**error, "advice": whatsapp_error_advice(int(error.get("code") or 0))}
            for error in errors
        ]
    _emit(
        tenant, "whatsapp.outbound", "whatsapp.message.status", phone or status.id, data, trace_id
    )
    return True


@dataclass(frozen=True)
class NotificationAccepted:
    messages: int  # new text messages stored
    statuses: int  # new statuses published
    repeats: int  # messages and statuses accepted before
    ignored: int  # messages of types not stored (reactions, contacts, orders, system...)


def whatsapp_notification_accept(
    *, tenant: Tenant, values: list[MessagesValue], trace_id: str
) -> NotificationAccepted:
    """Accept the messages and statuses of a verified notification, each once by its id."""
    messages = statuses = repeats = ignored = 0
    for value in values:
        for message in value.messages:
            content = message.content()
            if content is None:
                ignored += 1
                continue
            text, typed = content
            _, created = whatsapp_message_receive(
                tenant=tenant,
                phone=message.sender,
                text=text,
                message_id=message.id,
                trace_id=trace_id,
                kind=message.type,
                content=typed,
                user_id=message.from_user_id,
                username=value.contact_of(message).profile.username,
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
    # In the order they were stored (ids), as the cut above is: two processes storing messages
    # of one conversation in the same moment may disagree on their clocks.
    recent = list(messages.order_by("-id")[:history])
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
