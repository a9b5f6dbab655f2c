"""whatsapp_send_template: Meta's template object, checked before anything is recorded, sent
once per idempotency key, stored in the conversation and published like any sent message; and
the stand-in refuses what Meta refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from effects.models import Effect
from integrations.models import WhatsAppMessage
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

TO = "+14155550100"
ORDER_UPDATE = {
    "to": TO,
    "name": "order_update",
    "language": "en_US",
    "components": [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ada"},
                {"type": "text", "text": "#1001"},
            ],
        }
    ],
}


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    tk = make_tenant("tmplshop")
    connect(tk.tenant, "whatsapp", saas.url)
    return tk


def test_a_template_is_sent_in_metas_shape_once_and_joins_the_conversation(
    shop: Any, saas: Any
) -> None:
    args = {**ORDER_UPDATE, "idempotency_key": "order-1001-shipped"}
    first = call(shop, "whatsapp_send_template", args)
    assert first.ok, first.error
    assert first.output["effect"]["state"] == "done"
    assert first.output["message_id"] == "wamid.1"
    again = call(shop, "whatsapp_send_template", args)
    assert again.output["effect"]["effect_id"] == first.output["effect"]["effect_id"]
    [(key, body)] = saas.state.applied_of("whatsapp")  # sent once
    assert key and body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550100",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ada"},
                        {"type": "text", "text": "#1001"},
                    ],
                }
            ],
        },
    }
    with dangerously_unscoped():
        message = WhatsAppMessage.objects.get(tenant=shop.tenant, provider_message_id="wamid.1")
        [event] = OutboxEvent.objects.filter(topic=f"{shop.tenant.slug}.whatsapp.outbound")
    assert message.direction == "outbound"
    assert message.text == "[template order_update (en_US)]: Ada | #1001"
    payload = json.loads(event.payload) if isinstance(event.payload, str) else event.payload
    assert payload["type"] == "whatsapp.message.sent"
    assert payload["data"]["message_id"] == "wamid.1"
    conversation = call(shop, "whatsapp_get_conversation", {"phone": TO}).output
    assert [m["text"] for m in conversation["messages"]] == [message.text]


def test_buttons_media_and_currency_parameters_become_metas_objects(shop: Any, saas: Any) -> None:
    sent = call(
        shop,
        "whatsapp_send_template",
        {
            "to": TO,
            "name": "discount_offer",
            "language": "en_US",
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "image", "link": "https://cdn.example.com/sale.png"}],
                },
                {
                    "type": "body",
                    "parameters": [
                        {
                            "type": "currency",
                            "currency": {
                                "fallback_value": "$12.50",
                                "code": "USD",
                                "amount_1000": 12500,
                            },
                        }
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "copy_code",
                    "index": 0,
                    "parameters": [{"type": "coupon_code", "coupon_code": "SAVE25"}],
                },
            ],
        },
    )
    assert sent.ok and sent.output["effect"]["state"] == "done", sent.output
    [(_, body)] = saas.state.applied_of("whatsapp")
    header, price, button = body["template"]["components"]
    assert header["parameters"] == [
        {"type": "image", "image": {"link": "https://cdn.example.com/sale.png"}}
    ]
    assert price["parameters"][0]["currency"]["amount_1000"] == 12500
    assert button == {
        "type": "button",
        "sub_type": "copy_code",
        "index": "0",
        "parameters": [{"type": "coupon_code", "coupon_code": "SAVE25"}],
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Order Update"}, "name"),
        ({"language": "english"}, "language"),
        ({"components": [{"type": "button", "parameters": []}]}, "components.0"),
        ({"components": [{"type": "body", "parameters": [{"type": "text"}]}]}, "text"),
        (
            {
                "components": [
                    {
                        "type": "header",
                        "parameters": [{"type": "image", "link": "http://x.example/a.png"}],
                    }
                ]
            },
            "https",
        ),
        ({"components": [{"type": "footer"}]}, "components.0: type must be one of"),
        # Named as the caller wrote it: no model or variant name in the path.
        (
            {"components": [{"type": "body", "parameters": [{"type": "text"}]}]},
            "components.0.parameters.0.text: Field required",
        ),
    ],
)
def test_a_malformed_template_is_refused_naming_the_field_and_nothing_is_recorded(
    shop: Any, saas: Any, change: dict[str, Any], field: str
) -> None:
    refused = call(shop, "whatsapp_send_template", {**ORDER_UPDATE, **change})
    assert refused.error is not None and refused.error.code == "invalid_input"
    assert field in refused.error.message
    with dangerously_unscoped():
        assert not Effect.objects.exists()
    assert saas.state.requests == []


def test_what_only_meta_can_know_fails_permanently_with_its_meaning(shop: Any, saas: Any) -> None:
    unknown = call(shop, "whatsapp_send_template", {**ORDER_UPDATE, "name": "order_updates"})
    effect = unknown.output["effect"]
    assert effect["state"] == "failed" and effect["attempts"] == 1
    assert "no approved template of this name in this language" in effect["last_error"]
    assert "Meta 132001" in effect["last_error"]
    one_short = {
        **ORDER_UPDATE,
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
    }
    mismatch = call(shop, "whatsapp_send_template", one_short).output["effect"]
    assert mismatch["state"] == "failed" and "Meta 132000" in mismatch["last_error"]
    assert "does not match the template's placeholders" in mismatch["last_error"]
    assert saas.state.applied_of("whatsapp") == []


def test_the_stand_in_refuses_bodies_the_cloud_api_refuses() -> None:
    from tests.fixtures.standins.whatsapp import Invalid, validate_message

    good = {"messaging_product": "whatsapp", "to": "14155550100", "type": "text",
            "text": {"body": "hi"}}  # fmt: skip
    validate_message(good)
    for bad, code in [
        ({**good, "messaging_product": "sms"}, 100),
        ({**good, "text": {"body": ""}}, 100),
        ({**good, "text": {"body": "x" * 4097}}, 100),
        ({**good, "text": {"body": "hi", "previewurl": True}}, 100),
        ({**good, "to": "+1 415"}, 100),
        ({**good, "type": "sticker"}, 131051),
        (
            {
                "messaging_product": "whatsapp",
                "to": "14155550100",
                "type": "template",
                "template": {"name": "hello_world"},
            },
            131008,  # language is required
        ),
    ]:
        with pytest.raises(Invalid) as caught:
            validate_message(bad)
        assert caught.value.code == code, bad
