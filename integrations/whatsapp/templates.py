"""Template messages: the only WhatsApp message a business may send outside the 24-hour
customer service window (Meta's error 131047 says to send one). The input follows Meta's
template object (name, language, components with parameters), checked before anything is
recorded, and becomes Meta's JSON in one place."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints

from effects.models import Effect
from effects.schemas import EffectOut, IdempotencyKey, idempotency_key_field
from effects.services import effect_perform_on_commit, effect_record
from integrations.connections import connection_require
from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import E164Phone, Input, Output, variant, variant_of
from tenants.models import Tenant

TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,512}$")]
# Meta's template languages: a language code, optionally with a region (en, en_US, pt_BR).
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")]
ParameterText = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Currency(Input):
    fallback_value: ParameterText = Field(description="Shown where the amount cannot be.")
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217 currency code, e.g. EUR."
    )
    amount_1000: int = Field(description="The amount times 1000 (12.50 EUR is 12500).")


class DateTime(Input):
    fallback_value: ParameterText = Field(description="The date as text, e.g. 'May 3, 2027'.")


# One model per parameter type, told apart by `type`: the published schema then says which
# field each type needs, so a schema-valid parameter is never refused.
ParameterName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
HttpsLink = Annotated[str, StringConstraints(pattern=r"^https://\S{1,2000}$")]


class _Parameter(Input):
    type: str = Field(description="Kind of value; the field of the same name holds it.")
    parameter_name: ParameterName | None = Field(
        None, description="For templates with named parameters: the placeholder's name."
    )

    def value(self) -> Any:
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.parameter_name:
            out["parameter_name"] = self.parameter_name
        out[out["type"]] = self.value()
        return out


class TextParameter(_Parameter):
    type: Literal["text"] = Field(description="A text placeholder.")
    text: ParameterText = Field(description="The text it takes.")

    def value(self) -> Any:
        return self.text


class PayloadParameter(_Parameter):
    type: Literal["payload"] = Field(description="A quick_reply button's payload.")
    payload: ParameterText = Field(description="For a quick_reply button.")

    def value(self) -> Any:
        return self.payload


class CouponParameter(_Parameter):
    type: Literal["coupon_code"] = Field(description="A copy_code button's code.")
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=15)] = Field(
        description="For a copy_code button (at most 15 characters)."
    )

    def value(self) -> Any:
        return self.coupon_code


class MediaParameter(_Parameter):
    type: Literal["image", "document", "video"] = Field(description="A media header.")
    link: HttpsLink = Field(description="The media's https URL.")

    def value(self) -> Any:
        return {"link": self.link}


class CurrencyParameter(_Parameter):
    type: Literal["currency"] = Field(description="An amount of money.")
    currency: Currency = Field(description="The amount and its currency.")

    def value(self) -> Any:
        return self.currency.model_dump()


class DateTimeParameter(_Parameter):
    type: Literal["date_time"] = Field(description="A date.")
    date_time: DateTime = Field(description="The date.")

    def value(self) -> Any:
        return self.date_time.model_dump()


def _kind(value: Any) -> str | None:
    """Which model a parameter or component is, from its `type` (the Input base's own
    validators rule out pydantic's plain discriminator)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return variant_of("media" if kind in ("image", "document", "video") else str(kind))


TemplateParameter = Annotated[
    Annotated[TextParameter, variant("text")]
    | Annotated[PayloadParameter, variant("payload")]
    | Annotated[CouponParameter, variant("coupon_code")]
    | Annotated[MediaParameter, variant("media")]
    | Annotated[CurrencyParameter, variant("currency")]
    | Annotated[DateTimeParameter, variant("date_time")],
    Discriminator(
        _kind,
        custom_error_type="type_unknown",
        custom_error_message="type must be one of text, payload, coupon_code, image, document, "
        "video, currency, date_time",
    ),
]


class _Component(Input):
    type: str = Field(description="Which part of the template it fills.")
    parameters: list[TemplateParameter] = Field(
        default_factory=list, max_length=100, description="Values of its placeholders, in order."
    )

    def meta(self) -> dict[str, Any]:
        return {"type": self.type, "parameters": [p.meta() for p in self.parameters]}


class TextComponent(_Component):
    type: Literal["header", "body"] = Field(description="Which part it fills.")


class ButtonComponent(_Component):
    type: Literal["button"] = Field(description="A button of the template.")
    sub_type: Literal["quick_reply", "url", "copy_code"] = Field(description="The button's kind.")
    index: int = Field(ge=0, le=9, description="The button's position, 0-9.")

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "sub_type": self.sub_type, "index": str(self.index)}


TemplateComponent = Annotated[
    Annotated[TextComponent, variant("header")]
    | Annotated[TextComponent, variant("body")]
    | Annotated[ButtonComponent, variant("button")],
    Discriminator(
        _kind,
        custom_error_type="type_unknown",
        custom_error_message="type must be one of header, body, button",
    ),
]


def template_summary(
    name: str, language: str, components: list[TextComponent | ButtonComponent]
) -> str:
    """How the conversation shows a template: its name and language, and its text values."""
    values = [p.text for c in components for p in c.parameters if isinstance(p, TextParameter)]
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


class MessageSendOut(Output):
    """What a send answers (a text or a template): the send is an effect, settled once known."""

    to: str = Field(description="The recipient, E.164.")
    message_id: str = Field(
        default="", description="WhatsApp message id (wamid) once sent; else empty."
    )
    effect: EffectOut = Field(description="The send: done, or pending (retried) or failed.")

    def settle(self, effect: Effect) -> None:
        self.effect = EffectOut.of(effect)
        self.message_id = str((effect.result or {}).get("message_id", ""))


class SendTemplateOut(MessageSendOut):
    name: str = Field(description="The template sent.")
    language: str = Field(description="Its language.")


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
