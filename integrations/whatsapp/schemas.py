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
# A business-scoped user id (BSUID): a country code, optionally ENT (a parent id), and up to 128
# letters and digits, e.g. US.13491208655302741918. Meta sends it with every message, and only
# it when a user with a username withholds their phone number.
BSUID = r"[A-Z]{2}(?:\.ENT)?\.[A-Za-z0-9]{1,128}"
UserId = Annotated[str, StringConstraints(pattern=rf"^{BSUID}$")]
# Whom a conversation is with: their phone number in E.164, else their BSUID.
ADDRESS_PATTERN = rf"^(?:\+[1-9][0-9]{{6,14}}|{BSUID})$"
WhatsAppAddress = Annotated[
    str,
    StringConstraints(pattern=ADDRESS_PATTERN),
    Field(
        description="The WhatsApp user: a phone number in E.164 ('+' then digits), or the "
        "business-scoped user id WhatsApp gives for users who hide their number behind a "
        "username (e.g. US.13491208655302741918).",
        examples=["+14155550123", "US.13491208655302741918"],
    ),
]
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


Short = Annotated[str, StringConstraints(max_length=4096)]


class Button(_Meta):
    """A tap on a template's quick-reply button."""

    text: Short = ""
    payload: Short = ""


class Reply(_Meta):
    id: Annotated[str, StringConstraints(max_length=256)] = ""
    title: Short = ""
    description: Short = ""


class Interactive(_Meta):
    """A reply to an interactive message: a reply button or a list row."""

    type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Media(_Meta):
    """An image, audio, video, document or sticker: its media id, to download it with the
    Graph API, and what describes it."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    mime_type: Annotated[str, StringConstraints(max_length=200)] = ""
    sha256: Annotated[str, StringConstraints(max_length=200)] = ""
    caption: Short = ""
    filename: Annotated[str, StringConstraints(max_length=1000)] = ""


class Location(_Meta):
    latitude: float
    longitude: float
    name: Short = ""
    address: Short = ""


MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# The message types stored and published; others (reactions, contacts, orders...) are counted.
STORED_TYPES = ("text", "button", "interactive", "location", *MEDIA_TYPES)


class Message(_Meta):
    # Meta omits the phone number of a user who has a username (unless it knows it already):
    # from_user_id (the BSUID) is then the only sender.
    from_: WaId | None = Field(None, alias="from")
    from_user_id: UserId | None = None
    id: MessageId
    timestamp: UnixSeconds = ""
    type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
    text: Text | None = None
    button: Button | None = None
    interactive: Interactive | None = None
    location: Location | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None

    @model_validator(mode="after")
    def _has_sender_and_content(self) -> Message:
        if self.from_ is None and self.from_user_id is None:
            raise ValueError("a message needs from or from_user_id")
        if self.type in STORED_TYPES and getattr(self, self.type) is None:
            raise ValueError(f"a {self.type} message needs its {self.type} object")
        return self

    @property
    def sender(self) -> str:
        """Whom the conversation is with: +phone, else the BSUID."""
        return f"+{self.from_}" if self.from_ else str(self.from_user_id)

    def content(self) -> tuple[str, dict[str, Any]] | None:
        """(the text a person or the bot reads, the typed content) of a stored type; None for
        the others."""
        if self.type not in STORED_TYPES:
            return None
        if self.type == "text" and self.text is not None:
            return self.text.body, {"body": self.text.body}
        if self.type == "button" and self.button is not None:
            return self.button.text, self.button.model_dump(include={"text", "payload"})
        if self.type == "interactive" and self.interactive is not None:
            reply = self.interactive.button_reply or self.interactive.list_reply or Reply()
            data = {"type": self.interactive.type, **reply.model_dump(include={"id", "title"})}
            if self.interactive.list_reply is not None:
                data["description"] = reply.description
            return reply.title, data
        if self.type == "location" and self.location is not None:
            place = self.location
            text = ", ".join(x for x in (place.name, place.address) if x)
            return text or f"{place.latitude},{place.longitude}", place.model_dump(
                include={"latitude", "longitude", "name", "address"}
            )
        media: Media = getattr(self, self.type)
        fields = {"id", "mime_type", "sha256", "caption", "filename"}
        return media.caption or f"[{self.type}]", media.model_dump(include=fields)


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
    recipient_user_id: UserId | None = None
    errors: list[StatusError] = Field(default_factory=list, max_length=20)


class Profile(_Meta):
    name: Short = ""
    username: Short = ""


class Contact(_Meta):
    profile: Profile = Field(default_factory=Profile)
    wa_id: WaId | None = None
    user_id: UserId | None = None


class MessagesValue(_Meta):
    messaging_product: Literal["whatsapp"]
    metadata: Metadata
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)

    def contact_of(self, message: Message) -> Contact:
        """The sender's contact entry (profile name, username), or an empty one."""
        for contact in self.contacts:
            if (message.from_user_id and contact.user_id == message.from_user_id) or (
                message.from_ and contact.wa_id == message.from_
            ):
                return contact
        return Contact()


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
