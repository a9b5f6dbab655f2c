"""Template messages: the only WhatsApp message a business may send outside the 24-hour
customer service window (Meta's error 131047 says to send one). The input follows Meta's
template object (name, language, components with parameters), checked before anything is
recorded, and becomes Meta's JSON in one place."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, HttpUrl, StringConstraints, model_validator

from effects.models import Effect
from effects.schemas import EffectOut, IdempotencyKey, idempotency_key_field
from effects.services import effect_perform_on_commit, effect_record
from integrations.connections import connection_require
from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import E164Phone, Input, Output
from tenants.models import Tenant

TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,512}$")]
# Meta's template languages: a language code, optionally with a region (en, en_US, pt_BR).
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")]
ParameterText = Annotated[str, StringConstraints(min_length=1, max_length=1024)]

_VALUE_OF = {
    "text": "text",
    "payload": "payload",
    "coupon_code": "coupon_code",
    "image": "link",
    "document": "link",
    "video": "link",
    "currency": "currency",
    "date_time": "date_time",
}


class Currency(Input):
    fallback_value: ParameterText = Field(description="Shown where the amount cannot be.")
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217 currency code, e.g. EUR."
    )
    amount_1000: int = Field(description="The amount times 1000 (12.50 EUR is 12500).")


class DateTime(Input):
    fallback_value: ParameterText = Field(description="The date as text, e.g. 'May 3, 2027'.")


class TemplateParameter(Input):
    type: Literal[
        "text", "payload", "coupon_code", "image", "document", "video", "currency", "date_time"
    ] = Field(description="Kind of value; give the field of the same name (link for media).")
    text: ParameterText | None = Field(None, description="For type text.")
    parameter_name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")] | None = Field(
        None, description="For templates with named parameters: the placeholder's name."
    )
    payload: ParameterText | None = Field(None, description="For a quick_reply button.")
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=15)] | None = Field(
        None, description="For a copy_code button (at most 15 characters)."
    )
    link: HttpUrl | None = Field(None, description="For image, document, video: its https URL.")
    currency: Currency | None = Field(None, description="For type currency.")
    date_time: DateTime | None = Field(None, description="For type date_time.")

    @model_validator(mode="after")
    def _value_matches_type(self) -> TemplateParameter:
        wanted = _VALUE_OF[self.type]
        given = [name for name in set(_VALUE_OF.values()) if getattr(self, name) is not None]
        if wanted not in given:
            raise ValueError(f"a {self.type} parameter needs {wanted}")
        if set(given) - {wanted}:
            raise ValueError(f"a {self.type} parameter takes only {wanted}")
        if wanted == "link" and self.link is not None and self.link.scheme != "https":
            raise ValueError("link must be an https URL")
        return self

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.parameter_name:
            out["parameter_name"] = self.parameter_name
        if self.link is not None:
            out[self.type] = {"link": str(self.link)}
        else:
            value = getattr(self, _VALUE_OF[self.type])
            out[self.type] = value.model_dump() if isinstance(value, Input) else value
        return out


class TemplateComponent(Input):
    type: Literal["header", "body", "button"] = Field(description="Which part it fills.")
    sub_type: Literal["quick_reply", "url", "copy_code"] | None = Field(
        None, description="For a button: its kind."
    )
    index: int | None = Field(None, ge=0, le=9, description="For a button: its position, 0-9.")
    parameters: list[TemplateParameter] = Field(
        default_factory=list, max_length=100, description="Values of its placeholders, in order."
    )

    @model_validator(mode="after")
    def _button_fields(self) -> TemplateComponent:
        is_button = self.type == "button"
        if is_button and (self.sub_type is None or self.index is None):
            raise ValueError("a button component needs sub_type and index")
        if not is_button and (self.sub_type is not None or self.index is not None):
            raise ValueError("only a button component takes sub_type and index")
        return self

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "button":
            out["sub_type"], out["index"] = self.sub_type, str(self.index)
        out["parameters"] = [p.meta() for p in self.parameters]
        return out


def template_summary(name: str, language: str, components: list[TemplateComponent]) -> str:
    """How the conversation shows a template: its name and language, and its text values."""
    values = [p.text for c in components for p in c.parameters if p.text]
    return f"[template {name} ({language})]" + (": " + " | ".join(values) if values else "")


def whatsapp_template_send(
    *,
    tenant: Tenant,
    to: str,
    name: str,
    language: str,
    components: list[TemplateComponent],
    key: str,
    trace_id: str,
    inline: bool = False,
) -> Effect:
    """Record the send of template `name` to `to`, once per `key`, in the caller's
    transaction; it goes out after commit, then is stored and published on whatsapp.outbound."""
    connection_require(tenant=tenant, provider="whatsapp")
    return effect_record(
        tenant=tenant,
        kind="whatsapp.send_template",
        key=key,
        payload={
            "to": to,
            "name": name,
            "language": language,
            "components": [c.meta() for c in components],
            "summary": template_summary(name, language, components),
        },
        trace_id=trace_id,
        inline=inline,
    )


class SendTemplateIn(Input):
    to: E164Phone
    name: TemplateName = Field(
        description="The approved template's name (lowercase letters, digits, underscores)."
    )
    language: LanguageCode = Field(
        description="The template's language as approved, e.g. en_US, pt_BR, de."
    )
    components: list[TemplateComponent] = Field(
        default_factory=list,
        max_length=20,
        description="Values for the template's header, body and button placeholders; empty "
        "for a template without placeholders.",
    )
    idempotency_key: IdempotencyKey | None = idempotency_key_field()


class SendTemplateOut(Output):
    to: str = Field(description="The recipient, E.164.")
    name: str = Field(description="The template sent.")
    language: str = Field(description="Its language.")
    message_id: str = Field(
        default="", description="WhatsApp message id (wamid) once sent; else empty."
    )
    effect: EffectOut = Field(description="The send: done, or pending (retried) or failed.")

    def settle(self, effect: Effect) -> None:
        self.effect = EffectOut.of(effect)
        self.message_id = str((effect.result or {}).get("message_id", ""))


@operation(
    service="whatsapp",
    title="Send WhatsApp template",
    permission="whatsapp.write",
    open_world=True,
    emits=("whatsapp.message.sent",),
)
def send_template(ctx: OperationContext, params: SendTemplateIn) -> SendTemplateOut:
    """Send an approved WhatsApp message template, the only message allowed when the customer
    has not written in 24 hours (what whatsapp_send_message's outside_service_window error
    asks for). Sent once per idempotency_key; the answer says whether it is done or pending."""
    effect = whatsapp_template_send(
        tenant=ctx.tenant,
        to=params.to,
        name=params.name,
        language=params.language,
        components=params.components,
        key=params.idempotency_key or uuid.uuid4().hex,
        trace_id=ctx.trace_id,
        inline=True,
    )
    out = SendTemplateOut(
        to=params.to, name=params.name, language=params.language, effect=EffectOut.of(effect)
    )
    effect_perform_on_commit(effect, then=out.settle)
    return out
