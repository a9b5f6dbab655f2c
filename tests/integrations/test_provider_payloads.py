"""Real payloads as the providers send them, accepted rather than refused: Shopify topics named
with a dot, WhatsApp users known only by their business-scoped user id, quick-reply buttons,
interactive replies and media, Clerk deliveries with Standard Webhooks headers."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from effects.models import Effect
from effects.services import effect_perform
from integrations.models import WhatsAppMessage
from integrations.whatsapp.services import whatsapp_message_send
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.fixtures.deliveries import (
    clerk_headers,
    clerk_user_created,
    dumps,
    meta_headers,
    post,
    shopify_headers,
    whatsapp_text,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    tenant = make_tenant(f"pl{secrets.token_hex(4)}").tenant
    for provider in ("shopify", "whatsapp"):
        connect(tenant, provider, saas.url)
    return tenant


def events(tenant: Any, topic: str) -> list[dict[str, Any]]:
    with dangerously_unscoped():
        rows = OutboxEvent.objects.filter(topic=f"{tenant.slug}.{topic}").order_by("id")
        return [json.loads(r.payload) if isinstance(r.payload, str) else r.payload for r in rows]


@pytest.mark.parametrize("topic", ["customer.tags_added", "customer.tags_removed", "orders/create"])
def test_shopify_topics_with_a_dot_or_a_slash_are_accepted(shop: Any, topic: str) -> None:
    # Shopify's customer.tags_added payload (webhook reference).
    body = dumps(
        {
            "customerId": "gid://shopify/Customer/105906728",
            "tags": ["vip"],
            "occurredAt": "2026-11-24T15:00:00.000Z",
        }
    )
    headers = shopify_headers(body, shop_domain=f"{shop.slug}.myshopify.com", topic=topic)
    answer = post(f"/hooks/shopify/{shop.slug}/", body, headers)
    assert answer.status_code == 200, answer.content
    [event] = events(shop, "shopify.webhooks")
    assert event["data"]["topic"] == topic


@pytest.mark.parametrize("topic", ["customer", "customer..tags", "Orders/Create", "a/b/c/d/e"])
def test_a_topic_of_another_shape_is_still_a_400(shop: Any, topic: str) -> None:
    body = dumps({"id": 1})
    headers = shopify_headers(body, shop_domain=f"{shop.slug}.myshopify.com", topic=topic)
    answer = post(f"/hooks/shopify/{shop.slug}/", body, headers)
    assert answer.status_code == 400 and "X-Shopify-Topic" in answer.json()["message"]
    assert events(shop, "shopify.webhooks") == []


def standard_webhooks(headers: dict[str, str]) -> dict[str, str]:
    """The same delivery's headers under Standard Webhooks' names (webhook-*)."""
    return {k.replace("svix-", "webhook-"): v for k, v in headers.items()}


def test_clerk_accepts_standard_webhooks_headers_as_well_as_svix(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    tenant = make_tenant(f"ck{secrets.token_hex(4)}").tenant
    connect(tenant, "clerk", saas.url)
    url = f"/hooks/clerk/{tenant.slug}/"
    body = dumps(clerk_user_created())
    headers = clerk_headers(body, msg_id="msg_standard1")
    accepted = post(url, body, standard_webhooks(headers))
    assert accepted.status_code == 200 and accepted.json()["accepted"] is True, accepted.content
    # The same message under Svix's names is the same delivery: a repeat.
    assert post(url, body, headers).json() == {"accepted": False, "duplicate": True}
    [event] = events(tenant, "clerk.auth.events")
    assert event["data"]["svix_id"] == "msg_standard1"
    forged = {**standard_webhooks(headers), "webhook-signature": "v1,AAAA", "webhook-id": "msg_x"}
    refused = post(url, body, forged)
    assert refused.status_code == 401
    assert len(events(tenant, "clerk.auth.events")) == 1


BSUID = "US.13491208655302741918"


def whatsapp_notification(message: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """A messages notification carrying `message` from `contact` (Meta's webhook reference)."""
    notification = whatsapp_text()
    value = notification["entry"][0]["changes"][0]["value"]
    value["contacts"], value["messages"] = [contact], [message]
    return notification


def deliver(tenant: Any, notification: dict[str, Any]) -> Any:
    body = dumps(notification)
    return post(f"/hooks/whatsapp/{tenant.slug}/", body, meta_headers(body))


def stored_messages(tenant: Any) -> list[Any]:
    with dangerously_unscoped():
        return list(WhatsAppMessage.objects.filter(tenant=tenant).order_by("id"))


def test_a_message_from_a_username_without_a_phone_number_is_stored_by_its_user_id(
    shop: Any, saas: Any
) -> None:
    """From 2026 a user with a username may reach the business without their phone number:
    the message carries from_user_id (the business-scoped user id) and no `from`."""
    message = {
        "from_user_id": BSUID,
        "id": "wamid.username1",
        "timestamp": "1749416383",
        "type": "text",
        "text": {"body": "Is my order on its way?"},
    }
    contact = {"profile": {"name": "Sheena", "username": "@sheena.shops"}, "user_id": BSUID}
    answer = deliver(shop, whatsapp_notification(message, contact))
    assert answer.status_code == 200, answer.content
    [stored] = stored_messages(shop)
    assert (stored.phone, stored.text, stored.kind) == (BSUID, "Is my order on its way?", "text")
    [event] = events(shop, "whatsapp.inbound")
    data = event["data"]
    assert (data["from"], data["user_id"], data["username"]) == (BSUID, BSUID, "@sheena.shops")
    # And out: a reply to that user goes to WhatsApp by `recipient`, not `to`.
    with tenant_scope(shop.pk):
        whatsapp_message_send(tenant=shop, to=BSUID, text="It is", key="reply-1", trace_id="")
    with tenant_scope(shop.pk):
        effect = Effect.objects.get(key="reply-1")
    effect_perform(effect_id=effect.pk, tenant_id=shop.pk)
    [(_, sent)] = saas.state.applied_of("whatsapp")
    assert sent["recipient"] == BSUID and "to" not in sent
    assert [m.phone for m in stored_messages(shop)] == [BSUID, BSUID]  # one conversation


@pytest.mark.parametrize(
    ("message", "kind", "text", "content"),
    [
        (
            {"type": "button", "button": {"text": "Yes, confirm", "payload": "CONFIRM-1001"}},
            "button",
            "Yes, confirm",
            {"text": "Yes, confirm", "payload": "CONFIRM-1001"},
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "track", "title": "Track order"},
                },
            },
            "interactive",
            "Track order",
            {"type": "button_reply", "id": "track", "title": "Track order"},
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "size-m", "title": "M", "description": "Medium"},
                },
            },
            "interactive",
            "M",
            {"type": "list_reply", "id": "size-m", "title": "M", "description": "Medium"},
        ),
        (
            {
                "type": "image",
                "image": {
                    "id": "1003383421387256",
                    "mime_type": "image/jpeg",
                    "sha256": "mLbG0Zd+M7X6yd8s7rPxvyMIbZk=",
                    "caption": "This one is broken",
                },
            },
            "image",
            "This one is broken",
            {
                "id": "1003383421387256",
                "mime_type": "image/jpeg",
                "sha256": "mLbG0Zd+M7X6yd8s7rPxvyMIbZk=",
                "caption": "This one is broken",
                "filename": "",
            },
        ),
        (
            {"type": "audio", "audio": {"id": "2004", "mime_type": "audio/ogg; codecs=opus"}},
            "audio",
            "[audio]",
            {"id": "2004", "mime_type": "audio/ogg; codecs=opus", "sha256": "", "caption": ""}
            | {"filename": ""},
        ),
    ],
)
def test_buttons_replies_and_media_are_stored_and_published_typed(
    shop: Any, message: dict[str, Any], kind: str, text: str, content: dict[str, Any]
) -> None:
    full = {"from": "16505551234", "id": f"wamid.{kind}{len(text)}", "timestamp": "1749416383"}
    contact = {"profile": {"name": "Sheena"}, "wa_id": "16505551234", "user_id": BSUID}
    answer = deliver(shop, whatsapp_notification({**full, **message}, contact))
    assert answer.status_code == 200, answer.content
    [stored] = stored_messages(shop)
    assert (stored.phone, stored.kind, stored.text, stored.content) == (
        "+16505551234",
        kind,
        text,
        content,
    )
    [event] = events(shop, "whatsapp.inbound")
    assert event["data"]["kind"] == kind and event["data"]["content"] == content
    assert event["data"]["text"] == text and event["data"]["from"] == "+16505551234"


def test_a_message_without_any_sender_is_a_400_and_a_reaction_is_only_counted(
    shop: Any,
) -> None:
    contact = {"profile": {"name": "Sheena"}}
    nobody = {"id": "wamid.x", "type": "text", "text": {"body": "hi"}}
    answer = deliver(shop, whatsapp_notification(nobody, contact))
    assert answer.status_code == 400 and "from_user_id" in answer.json()["message"]
    reaction = {
        "from": "16505551234",
        "id": "wamid.reaction",
        "type": "reaction",
        "reaction": {"message_id": "wamid.1", "emoji": "\U0001f44d"},
    }
    assert deliver(shop, whatsapp_notification(reaction, contact)).status_code == 200
    assert stored_messages(shop) == [] and events(shop, "whatsapp.inbound") == []
