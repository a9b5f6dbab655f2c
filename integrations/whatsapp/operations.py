"""WhatsApp operations: send, receive, read a conversation, and the bot's LLM reply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from effects.models import Effect
from effects.schemas import EffectOut, IdempotencyKey, idempotency_key_field
from effects.services import effect_perform_on_commit
from integrations.connections import connection_require
from integrations.llm.services import MCP_SAMPLING
from integrations.models import WhatsAppMessage
from integrations.whatsapp.schemas import WhatsAppAddress
from integrations.whatsapp.services import (
    bot_reply_write,
    whatsapp_message_receive,
    whatsapp_message_send,
)
from integrations.whatsapp.templates import MessageSendOut
from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import Input, Output
from tenants.scope import tenant_scope

MessageText = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class MessageOut(Output):
    phone: str = Field(
        description="The other party: E.164, or their business-scoped user id if WhatsApp "
        "withholds their number."
    )
    direction: Literal["inbound", "outbound"] = Field(description="Who sent it.")
    text: str = Field(
        description="Message text; for a button or reply its title, for media its caption."
    )
    kind: str = Field(
        "text", description="WhatsApp's message type: text, button, interactive, image..."
    )
    content: dict[str, Any] = Field(
        default_factory=dict,
        description="The typed content: a button's text and payload, a reply's id and title, a "
        "media's id, mime_type and caption, a location.",
    )
    message_id: str = Field(description="WhatsApp message id (wamid); empty if none.")
    created_at: datetime = Field(description="When SmarterOS recorded it (UTC).")

    @classmethod
    def of(cls, message: WhatsAppMessage) -> MessageOut:
        return cls.model_validate(
            {
                "phone": message.phone,
                "direction": message.direction,
                "text": message.text,
                "kind": message.kind,
                "content": message.content,
                "message_id": message.provider_message_id,
                "created_at": message.created_at,
            }
        )


class SendMessageIn(Input):
    to: WhatsAppAddress
    text: MessageText = Field(description="Message text, 1-4096 characters.")
    preview_url: bool = Field(False, description="Let WhatsApp show a preview of the first link.")
    idempotency_key: IdempotencyKey | None = idempotency_key_field()


class SendMessageOut(MessageSendOut):
    text: str = Field(description="Message text.")


@operation(
    service="whatsapp",
    title="Send WhatsApp message",
    permission="whatsapp.write",
    open_world=True,
    emits=("whatsapp.message.sent",),
)
def send_message(ctx: OperationContext, params: SendMessageIn) -> SendMessageOut:
    """Send a WhatsApp text message from the tenant's business number to a customer. WhatsApp
    delivers free text only within 24 hours of the customer's last message; after that the send
    fails with outside_service_window and only whatsapp_send_template works. The send happens
    once per idempotency_key; the answer says whether it is done, pending or failed (why)."""
    effect = whatsapp_message_send(
        tenant=ctx.tenant,
        to=params.to,
        text=params.text,
        key=params.idempotency_key or uuid.uuid4().hex,
        trace_id=ctx.trace_id,
        preview_url=params.preview_url,
        inline=True,
    )
    out = SendMessageOut(to=params.to, text=params.text, effect=EffectOut.of(effect))
    effect_perform_on_commit(effect, then=out.settle)
    return out


class InboundIn(Input):
    from_phone: WhatsAppAddress
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
    message, created = whatsapp_message_receive(
        tenant=ctx.tenant,
        phone=params.from_phone,
        text=params.text,
        message_id=params.message_id,
        trace_id=ctx.trace_id,
    )
    return InboundOut(accepted=created, message=MessageOut.of(message))


class ConversationIn(Input):
    phone: WhatsAppAddress
    limit: int = Field(50, ge=1, le=500, description="Most recent messages to return (1-500).")


class ConversationOut(Output):
    phone: str = Field(description="The customer: E.164, or their business-scoped user id.")
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
    phone: WhatsAppAddress
    instructions: Annotated[str, StringConstraints(max_length=4000)] | None = Field(
        None, description="Extra instructions for this reply, added to the bot's prompt."
    )
    send: bool = Field(True, description="Send the reply on WhatsApp; false only drafts it.")
    client_sampling: bool = Field(
        False,
        description="Ask this MCP client's own model to write the reply (MCP sampling) when the "
        "client supports it; otherwise, or over REST, the tenant's LLM writes it.",
    )
    history: int = Field(
        20, ge=1, le=100, description="Conversation messages given to the model (1-100)."
    )
    idempotency_key: IdempotencyKey | None = idempotency_key_field()


class BotResponseOut(Output):
    reply: str = Field(description="The reply the model wrote.")
    sent: bool = Field(description="Whether it was sent on WhatsApp (false while pending).")
    model: str = Field(description="The LLM that wrote it.")
    written_by: Literal["tenant_llm", "mcp_client"] = Field(
        description="tenant_llm (the tenant's LLM) or mcp_client (the client, by sampling)."
    )
    tokens_in: int = Field(description="Prompt tokens used.")
    tokens_out: int = Field(description="Completion tokens used.")
    effect: EffectOut | None = Field(default=None, description="The send, when send is true.")

    def settle(self, effect: Effect) -> None:
        self.effect = EffectOut.of(effect)
        self.sent = effect.state == Effect.State.DONE


@operation(
    service="whatsapp",
    title="Create bot response",
    permission="whatsapp.write",
    open_world=True,
    emits=("whatsapp.message.sent",),
    atomic=False,  # the LLM writes outside any transaction; the send is an effect
)
def create_bot_response(ctx: OperationContext, params: BotResponseIn) -> BotResponseOut:
    """Have the LLM write a reply to the conversation with a phone number, record its token
    usage, and send it on WhatsApp unless send is false (once per idempotency_key)."""
    reply = bot_reply_write(
        tenant=ctx.tenant,
        phone=params.phone,
        instructions=params.instructions,
        history=params.history,
        trace_id=ctx.trace_id,
        sample=ctx.sample if params.client_sampling else None,
    )
    ctx.model, ctx.tokens_in, ctx.tokens_out = reply.model, reply.tokens_in, reply.tokens_out
    out = BotResponseOut(
        reply=reply.text,
        sent=False,
        model=reply.model,
        written_by="mcp_client" if reply.provider == MCP_SAMPLING else "tenant_llm",
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
    )
    if params.send and reply.text:
        with tenant_scope(ctx.tenant.pk):
            effect = whatsapp_message_send(
                tenant=ctx.tenant,
                to=params.phone,
                text=reply.text[:4096],
                key=params.idempotency_key or uuid.uuid4().hex,
                trace_id=ctx.trace_id,
                inline=True,
            )
            effect_perform_on_commit(effect, then=out.settle)
    return out
