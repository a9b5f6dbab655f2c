"""Real payloads as the providers send them, accepted rather than refused: Shopify topics named
with a dot, Clerk deliveries with Standard Webhooks headers."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.fixtures.deliveries import (
    clerk_headers,
    clerk_user_created,
    dumps,
    post,
    shopify_headers,
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
