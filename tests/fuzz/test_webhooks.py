"""Random bodies, headers and signatures at every webhook, over HTTP to the app under uvicorn:
each is refused (400, 401, 403, 413 or 429, JSON) and nothing is stored, correctly signed
random JSON included."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.models import WebhookDelivery, WhatsAppMessage
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.fixtures.deliveries import (
    META_APP_SECRET,
    N8N_WEBHOOK_SECRET,
    SHOPIFY_APP_SECRET,
    clerk_headers,
    clerk_user_created,
    dumps,
    hmac_base64,
    hmac_hex,
    shopify_headers,
)
from tests.fuzz.strategies import FUZZ, header_values, json_bodies, json_values, raw_bodies

pytestmark = pytest.mark.django_db

PROVIDERS = ("shopify", "whatsapp", "n8n", "clerk")
REFUSALS = {400, 401, 403, 413, 429}
# Content-Length is the client's to set (a wrong one never leaves it); 413 has its own tests.
HEADER_NAMES = [
    "Content-Type",
    "X-Shopify-Topic",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Shop-Domain",
    "X-Shopify-Webhook-Id",
    "X-Hub-Signature-256",
    "X-SmarterOS-Signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
]


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    """A tenant connected to every provider, with a limit the fuzzing cannot reach."""
    tenant = make_tenant(f"fz{secrets.token_hex(4)}", rate_limit=1_000_000).tenant
    for provider in PROVIDERS:
        connect(tenant, provider, saas.url)
    return tenant


def stored() -> tuple[int, int, int]:
    """Everything a delivery could leave behind."""
    with dangerously_unscoped():
        return (
            OutboxEvent.objects.count(),
            WebhookDelivery.objects.count(),
            WhatsAppMessage.objects.count(),
        )


def deliver(url: str, body: bytes, headers: dict[str, str | bytes]) -> httpx.Response:
    """POST a delivery. On this shared machine a connection to PostgreSQL can time out: that
    is a 503 naming the dependency, which stores nothing and is retried, as providers do."""
    for _ in range(5):
        before = stored()
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        if response.status_code != 503:
            return response
        assert response.json()["code"] == "dependency_unavailable", response.text
        assert stored() == before
    raise AssertionError(f"503 five times: {response.text}")


def assert_refused(response: httpx.Response, before: tuple[int, int, int]) -> None:
    assert response.status_code in REFUSALS, (response.status_code, response.text)
    assert set(response.json()) >= {"code", "message"}
    assert stored() == before


@FUZZ
@given(
    provider=st.sampled_from(PROVIDERS),
    known_tenant=st.booleans(),
    body=raw_bodies,
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=6),
)
def test_random_deliveries_are_refused_and_store_nothing(
    web_server: str, shop: Any, provider: str, known_tenant: bool, body: bytes, headers: dict
) -> None:
    slug = shop.slug if known_tenant else "no-such-tenant"
    before = stored()
    response = deliver(f"{web_server}/hooks/{provider}/{slug}/", body, headers)
    assert_refused(response, before)


@FUZZ
@given(
    body=json_values.filter(lambda value: not isinstance(value, dict)).map(
        lambda value: json.dumps(value).encode()
    ),
    topic=st.sampled_from(["orders/create", "products/update"]) | header_values,
)
def test_correctly_signed_shopify_bodies_that_are_not_objects_are_400(
    web_server: str, shop: Any, body: bytes, topic: str
) -> None:
    """Shopify's payload is any JSON object; signed, from the right shop, anything else is
    refused as the payload it is."""
    headers = shopify_headers(body, shop_domain=f"{shop.slug}.myshopify.com", topic=topic)
    before = stored()
    response = deliver(f"{web_server}/hooks/shopify/{shop.slug}/", body, headers)
    assert_refused(response, before)
    assert response.status_code == 400


@FUZZ
@given(provider=st.sampled_from(["whatsapp", "n8n"]), body=json_bodies)
def test_correctly_signed_random_json_is_400(
    web_server: str, shop: Any, provider: str, body: bytes
) -> None:
    """Signed with the connection's own secret, random JSON still is not the documented shape."""
    header, signature = (
        ("X-Hub-Signature-256", hmac_hex(META_APP_SECRET, body))
        if provider == "whatsapp"
        else ("X-SmarterOS-Signature", hmac_hex(N8N_WEBHOOK_SECRET, body))
    )
    before = stored()
    response = deliver(
        f"{web_server}/hooks/{provider}/{shop.slug}/",
        body,
        {header: signature, "Content-Type": "application/json"},
    )
    assert_refused(response, before)
    assert response.status_code == 400


@FUZZ
# A body the payload check passes (no NUL anywhere), so the signature is what is judged.
@given(signature=header_values, body=json_bodies.filter(lambda body: b"\\u0000" not in body))
def test_random_shopify_signatures_are_401(
    web_server: str, shop: Any, signature: str, body: bytes
) -> None:
    headers = shopify_headers(b"{}", shop_domain=f"{shop.slug}.myshopify.com")
    wrapped = b'{"payload": ' + body + b"}"
    headers["X-Shopify-Hmac-Sha256"] = signature
    if signature == hmac_base64(SHOPIFY_APP_SECRET, wrapped):  # pragma: no cover - 2**-256
        return
    before = stored()
    response = deliver(f"{web_server}/hooks/shopify/{shop.slug}/", wrapped, headers)
    assert_refused(response, before)
    assert response.status_code == 401


@FUZZ
@given(signature=header_values)
def test_random_svix_signatures_are_401(web_server: str, shop: Any, signature: str) -> None:
    """A Clerk event with a fresh svix-id and timestamp: only the signature can be wrong."""
    body = dumps(clerk_user_created())
    headers = {**clerk_headers(body), "svix-signature": signature}
    before = stored()
    response = deliver(f"{web_server}/hooks/clerk/{shop.slug}/", body, headers)
    assert_refused(response, before)
    assert response.status_code == 401


# Header bytes as they reach the server (read as latin-1): digits of other scripts (² is 0xB2),
# thousands of digits, times past 2099, signs, spaces.
svix_timestamps = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30),
    st.sampled_from(["\xb2", "\xb9\xb2\xb3", "9" * 5000, "99999999999999", "-1", "+1", " 1"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
).map(lambda text: text.strip(" \t").encode("latin-1"))


@FUZZ
@given(stamp=svix_timestamps)
def test_svix_timestamps_that_are_not_now_are_401(web_server: str, shop: Any, stamp: bytes) -> None:
    """A Clerk event signed for whatever svix-timestamp it carries: only a Unix time within the
    tolerance of now could pass, and none of these is one."""
    body = dumps(clerk_user_created())
    headers = clerk_headers(body)
    headers.pop("svix-timestamp")
    before = stored()
    response = deliver(
        f"{web_server}/hooks/clerk/{shop.slug}/",
        body,
        {**headers, "svix-timestamp": stamp, "Content-Type": "application/json"},
    )
    assert_refused(response, before)
    assert response.status_code == 401
