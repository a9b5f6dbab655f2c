"""The WhatsApp Cloud API webhook notification, as Meta documents it (messages and statuses of
the `messages` field), validated before anything reads it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from integrations.payloads import model_parse
from smarteros.parsing import parse_unix_time

# A WhatsApp user id (wa_id): the phone number's digits, no "+", at most 15 (E.164).
WaId = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{6,14}$")]
PhoneNumberId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,30}$")]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _unix_seconds(value: str) -> str:
    if value:
        parse_unix_time(value, field="timestamp")  # its InvalidValue is a ValueError
    return value


# Meta's timestamps: Unix seconds as a string; "" when absent. Bounded (no year 33658).
UnixSeconds = Annotated[str, AfterValidator(_unix_seconds)]


class _Meta(BaseModel):
    # Meta adds fields over time; only what is read is checked.
    model_config = ConfigDict(extra="allow")


class Metadata(_Meta):
    display_phone_number: str = ""
    phone_number_id: PhoneNumberId


class Text(_Meta):
    body: Annotated[str, StringConstraints(max_length=4096)]


class Message(_Meta):
    from_: WaId = Field(alias="from")
    id: MessageId
    timestamp: UnixSeconds = ""
    type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
    text: Text | None = None

    @model_validator(mode="after")
    def _text_has_body(self) -> Message:
        if self.type == "text" and self.text is None:
            raise ValueError("a text message needs text.body")
        return self


class StatusError(_Meta):
    """An entry of a failed status's errors[]: code, title, message, error_data.details."""

    code: int
    title: Annotated[str, StringConstraints(max_length=1000)] = ""
    message: Annotated[str, StringConstraints(max_length=1000)] = ""
    error_data: dict[str, Any] = Field(default_factory=dict)


class Status(_Meta):
    id: MessageId
    # sent, delivered, read, failed (others Meta may add are published, not stored)
    status: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,20}$")]
    timestamp: UnixSeconds = ""
    recipient_id: WaId | None = None
    errors: list[StatusError] = Field(default_factory=list, max_length=20)


class MessagesValue(_Meta):
    messaging_product: Literal["whatsapp"]
    metadata: Metadata
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)


class Change(_Meta):
    field: Annotated[str, StringConstraints(max_length=100)]
    value: dict[str, Any]


class Entry(_Meta):
    id: str
    changes: list[Change]


class Notification(_Meta):
    object: Literal["whatsapp_business_account"]
    entry: list[Entry]


def whatsapp_notification_parse(payload: Any) -> list[MessagesValue]:
    """The `messages` changes of a notification (other fields carry no messages and are left
    alone); BadPayload names the first field that breaks Meta's documented shape."""
    notification = model_parse(Notification, payload)
    values = []
    for e, entry in enumerate(notification.entry):
        for c, change in enumerate(entry.changes):
            if change.field == "messages":
                try:
                    values.append(model_parse(MessagesValue, change.value))
                except ValueError as exc:
                    raise type(exc)(
                        str(exc).replace("body.", f"body.entry[{e}].changes[{c}].value.")
                    ) from None
    return values
