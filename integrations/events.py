"""Event types of the Shopify, WhatsApp, n8n and Clerk integrations."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from integrations.shopify.schemas import WEBHOOK_TOPIC_PATTERN
from integrations.whatsapp.schemas import ADDRESS_PATTERN
from smarteros.events.schemas import PERSONAL, EventData, event_type


@event_type("shopify.webhook.received")
class ShopifyWebhookReceived(EventData):
    topic: str = Field(pattern=WEBHOOK_TOPIC_PATTERN)
    webhook_id: str
    payload: dict[str, Any]


@event_type("shopify.product.snapshot")
class ShopifyProductSnapshot(EventData):
    id: str = Field(pattern=r"^gid://shopify/Product/\d+$")
    title: str


@event_type("shopify.inventory.set")
class ShopifyInventorySet(EventData):
    location_id: str
    quantity: int = Field(ge=0)
    reason: str


@event_type("shopify.order.created")
class ShopifyOrderCreated(EventData):
    order_id: str | None
    name: str | None


@event_type("whatsapp.message.received")
class WhatsAppMessageReceived(EventData):
    """A customer's message: `from` is +E.164, or the business-scoped user id (also in
    `user_id`) of a user whose number WhatsApp withholds; `kind` the WhatsApp type (text,
    button, interactive, image, audio, video, document, sticker, location) and `content` its
    typed fields; `text` what a person reads of it."""

    from_: str = Field(alias="from", pattern=ADDRESS_PATTERN, json_schema_extra=PERSONAL)
    text: str
    message_id: str
    kind: str = "text"
    content: dict[str, Any] = {}
    user_id: str | None = Field(None, json_schema_extra=PERSONAL)
    username: str | None = Field(None, json_schema_extra=PERSONAL)


@event_type("whatsapp.message.sent")
class WhatsAppMessageSent(EventData):
    to: str = Field(pattern=ADDRESS_PATTERN, json_schema_extra=PERSONAL)
    text: str
    message_id: str


@event_type("whatsapp.message.status")
class WhatsAppMessageStatus(EventData):
    """What WhatsApp reports about a sent message: sent, delivered, read, failed (with errors)."""

    message_id: str
    status: str = Field(pattern=r"^[a-z_]{1,20}$")
    to: str = Field(pattern=f"{ADDRESS_PATTERN}|^$", json_schema_extra=PERSONAL)
    timestamp: str = ""  # when WhatsApp says it happened (Unix seconds)
    stored: bool = False  # whether it was recorded on the stored message (a sent one, not behind)
    errors: list[dict[str, Any]] = []  # Meta's errors[], each with our `advice`


@event_type("n8n.workflow.triggered")
class N8nWorkflowTriggered(EventData):
    webhook_path: str


@event_type("n8n.workflow.result")
class N8nWorkflowResult(EventData):
    """What a workflow reports back; with `whatsapp_to` and `whatsapp_text` it sends a message."""

    workflow: str = ""
    execution_id: str = ""
    whatsapp_to: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$", json_schema_extra=PERSONAL)
    whatsapp_text: str | None = Field(None, min_length=1, max_length=4096)


@event_type("clerk.webhook.received")
class ClerkWebhookReceived(EventData):
    """A verified Clerk event (user.created, session.ended, ...), as Clerk sent it."""

    type: str = Field(pattern=r"^[a-zA-Z]{1,60}(\.[a-zA-Z_]{1,60}){1,3}$")
    svix_id: str
    instance_id: str = ""
    timestamp: int | None = None  # Clerk's, in milliseconds
    data: dict[str, Any]
