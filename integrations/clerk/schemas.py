"""A Clerk webhook event, as Clerk documents it: `{"data", "object": "event", "type",
"instance_id", "timestamp", "event_attributes"}`, with `svix-id` naming the delivery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from integrations.clerk.signatures import svix_headers
from integrations.payloads import BadPayload, model_parse

# user.created, session.ended, organizationInvitation.accepted, ...
EventType = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z]{1,60}(\.[a-zA-Z_]{1,60}){1,3}$")]
InstanceId = Annotated[str, StringConstraints(pattern=r"^ins_[A-Za-z0-9]{1,60}$")]
SVIX_ID = r"^msg_[A-Za-z0-9]{1,64}$"


class ClerkEvent(BaseModel):
    # Clerk adds fields over time; only what is read is checked.
    model_config = ConfigDict(extra="allow")

    type: EventType
    object: Literal["event"]
    data: dict[str, Any]
    instance_id: InstanceId | None = None
    timestamp: int | None = Field(None, ge=0)  # milliseconds since the epoch


class ClerkDelivery(BaseModel):
    svix_id: Annotated[str, StringConstraints(pattern=SVIX_ID)]
    event: ClerkEvent


def clerk_delivery_parse(headers: Mapping[str, str], payload: Any) -> ClerkDelivery:
    """The delivery's svix-id and event; BadPayload names the header or field at fault."""
    if not isinstance(payload, dict):
        raise BadPayload("body: a Clerk event is a JSON object")
    family, msg_id, _, _ = svix_headers(headers)
    return model_parse(
        ClerkDelivery,
        {"svix_id": msg_id, "event": payload},
        names={"svix_id": f"{family}-id", "event": "body"},
    )
