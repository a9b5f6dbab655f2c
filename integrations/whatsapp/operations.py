"""WhatsApp operations: send, receive, read a conversation, and the bot's LLM reply."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from integrations.connections import connection_credentials, connection_require
from integrations.models import IntegrationConnection, WhatsAppMessage
from integrations.whatsapp.client import (
    ANTHROPIC_BASE_URL,
    GRAPH_BASE_URL,
    AnthropicClient,
    WhatsAppClient,
)
from mcp_tools.context import OperationContext
from mcp_tools.errors import InvalidInput
from mcp_tools.registry import operation
from mcp_tools.schemas import E164Phone, Input, Output
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit

MessageText = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
DEFAULT_BOT_PROMPT = (
    "You are the shop's WhatsApp assistant. Answer briefly and politely in the customer's language."
)


def _connection(ctx: OperationContext) -> tuple[IntegrationConnection, dict[str, str]]:
    connection = connection_require(tenant=ctx.tenant, provider="whatsapp")
    return connection, connection_credentials(connection)


def _whatsapp(connection: IntegrationConnection, credentials: dict[str, str]) -> WhatsAppClient:
    return WhatsAppClient(
        phone_number_id=connection.config["phone_number_id"],
        access_token=credentials["access_token"],
        base_url=connection.config.get("api_base_url") or GRAPH_BASE_URL,
    )


def _emit(
    ctx: OperationContext, topic: str, event_type: str, phone: str, data: dict[str, object]
) -> None:
    outbox_emit(
        topic=f"{ctx.tenant.slug}.{topic}",
        key=phone,
        tenant_id=ctx.tenant.pk,
        envelope=Envelope(
            type=event_type,
            source="integrations.whatsapp",
            tenant=ctx.tenant.slug,
            trace_id=ctx.trace_id,
            data=data,
        ),
    )


class MessageOut(Output):
    phone: str = Field(description="The other party, E.164.")
    direction: Literal["inbound", "outbound"] = Field(description="Who sent it.")
    text: str = Field(description="Message text.")
    message_id: str = Field(description="WhatsApp message id (wamid); empty if none.")
    created_at: datetime = Field(description="When SmarterOS recorded it (UTC).")

    @classmethod
    def of(cls, message: WhatsAppMessage) -> MessageOut:
        return cls.model_validate(
            {
                "phone": message.phone,
                "direction": message.direction,
                "text": message.text,
                "message_id": message.provider_message_id,
                "created_at": message.created_at,
            }
        )


def _send(ctx: OperationContext, to: str, text: str, preview_url: bool = False) -> WhatsAppMessage:
    connection, credentials = _connection(ctx)
    message_id = _whatsapp(connection, credentials).send_text(
        to=to, body=text, preview_url=preview_url
    )
    message = WhatsAppMessage.objects.create(
        tenant=ctx.tenant,
        phone=to,
        direction=WhatsAppMessage.Direction.OUTBOUND,
        text=text,
        provider_message_id=message_id,
    )
    _emit(
        ctx,
        "whatsapp.outbound",
        "whatsapp.message.sent",
        to,
        {"to": to, "text": text, "message_id": message_id},
    )
    return message


class SendMessageIn(Input):
    to: E164Phone
    text: MessageText = Field(description="Message text, 1-4096 characters.")
    preview_url: bool = Field(False, description="Let WhatsApp show a preview of the first link.")


@operation(
    service="whatsapp",
    title="Send WhatsApp message",
    permission="whatsapp.write",
    open_world=True,
    emits=("whatsapp.message.sent",),
)
def send_message(ctx: OperationContext, params: SendMessageIn) -> MessageOut:
    """Send a WhatsApp text message from the tenant's business number to a customer."""
    return MessageOut.of(_send(ctx, params.to, params.text, params.preview_url))


class InboundIn(Input):
    from_phone: E164Phone
    text: MessageText = Field(description="The customer's message text.")
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="WhatsApp message id (wamid) of the inbound message; repeats are ignored."
    )


class InboundOut(Output):
    accepted: bool = Field(description="False if this message id was already processed.")
    message: MessageOut = Field(description="The stored message.")


@operation(
    service="whatsapp",
    title="Process inbound WhatsApp message",
    permission="whatsapp.write",
    idempotent=True,
    emits=("whatsapp.message.received",),
)
def process_inbound(ctx: OperationContext, params: InboundIn) -> InboundOut:
    """Record a message a customer sent to the tenant's number and publish it on
    whatsapp.inbound, where the bot answers it. The same message id twice is stored once."""
    connection_require(tenant=ctx.tenant, provider="whatsapp")
    message, created = WhatsAppMessage.objects.get_or_create(
        tenant=ctx.tenant,
        provider_message_id=params.message_id,
        defaults={
            "phone": params.from_phone,
            "direction": WhatsAppMessage.Direction.INBOUND,
            "text": params.text,
        },
    )
    if created:
        _emit(
            ctx,
            "whatsapp.inbound",
            "whatsapp.message.received",
            params.from_phone,
            {"from": params.from_phone, "text": params.text, "message_id": params.message_id},
        )
    return InboundOut(accepted=created, message=MessageOut.of(message))


class ConversationIn(Input):
    phone: E164Phone
    limit: int = Field(50, ge=1, le=500, description="Most recent messages to return (1-500).")


class ConversationOut(Output):
    phone: str = Field(description="The customer, E.164.")
    messages: list[MessageOut] = Field(description="Messages, oldest first.")


@operation(
    service="whatsapp",
    title="Get WhatsApp conversation",
    permission="whatsapp.read",
    read_only=True,
)
def get_conversation(ctx: OperationContext, params: ConversationIn) -> ConversationOut:
    """The latest messages between the tenant and one phone number, oldest first."""
    connection_require(tenant=ctx.tenant, provider="whatsapp")
    recent = list(
        WhatsAppMessage.objects.filter(tenant=ctx.tenant, phone=params.phone).order_by(
            "-created_at", "-id"
        )[: params.limit]
    )
    return ConversationOut(
        phone=params.phone, messages=[MessageOut.of(m) for m in reversed(recent)]
    )


class BotResponseIn(Input):
    phone: E164Phone
    instructions: Annotated[str, StringConstraints(max_length=4000)] | None = Field(
        None, description="Extra instructions for this reply, added to the bot's prompt."
    )
    send: bool = Field(True, description="Send the reply on WhatsApp; false only drafts it.")
    history: int = Field(
        20, ge=1, le=100, description="Conversation messages given to the model (1-100)."
    )


class BotResponseOut(Output):
    reply: str = Field(description="The reply the model wrote.")
    sent: bool = Field(description="Whether it was sent on WhatsApp.")
    model: str = Field(description="The LLM that wrote it.")
    tokens_in: int = Field(description="Prompt tokens used.")
    tokens_out: int = Field(description="Completion tokens used.")


@operation(
    service="whatsapp",
    title="Create bot response",
    permission="whatsapp.write",
    open_world=True,
    emits=("whatsapp.message.sent",),
)
def create_bot_response(ctx: OperationContext, params: BotResponseIn) -> BotResponseOut:
    """Have the LLM write a reply to the conversation with a phone number, record its token
    usage, and send it on WhatsApp unless send is false."""
    connection, credentials = _connection(ctx)
    if not credentials.get("llm_api_key"):
        raise InvalidInput(
            "the WhatsApp connection has no llm_api_key; an operator adds it in the admin"
        )
    history = list(
        WhatsAppMessage.objects.filter(tenant=ctx.tenant, phone=params.phone).order_by(
            "-created_at", "-id"
        )[: params.history]
    )[::-1]
    if not history or history[-1].direction != WhatsAppMessage.Direction.INBOUND:
        raise InvalidInput(f"phone: no customer message from {params.phone} is waiting for a reply")
    messages = [
        {"role": "user" if m.direction == "inbound" else "assistant", "content": m.text}
        for m in history
    ]
    llm = AnthropicClient(
        api_key=credentials["llm_api_key"],
        model=connection.config.get("llm_model") or "claude-sonnet-4-5",
        base_url=connection.config.get("llm_base_url") or ANTHROPIC_BASE_URL,
    )
    system = connection.config.get("bot_prompt") or DEFAULT_BOT_PROMPT
    if params.instructions:
        system += "\n" + params.instructions
    reply = llm.reply(system=system, messages=_merge_roles(messages))
    ctx.model, ctx.tokens_in, ctx.tokens_out = reply.model, reply.tokens_in, reply.tokens_out
    if params.send and reply.text:
        _send(ctx, params.phone, reply.text[:4096])
    return BotResponseOut(
        reply=reply.text,
        sent=params.send and bool(reply.text),
        model=reply.model,
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
    )


def _merge_roles(messages: list[dict[str, str]]) -> list[dict[str, str]]:
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
