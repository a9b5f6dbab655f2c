"""Webhook refusals cost the tenant nothing and tell the sender nothing: what is refused before
the signature verifies is charged to the source address's bucket, never the tenant's; a source
that keeps being refused is refused itself; and every answer before the signature is the same
whether the tenant exists, is suspended, is connected to the provider, or owns the shop domain
or phone number the delivery names."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from integrations.inbound import UNVERIFIED_MESSAGE, refused_count, signing_secrets_forget
from tests.fixtures.deliveries import (
    clerk_headers,
    clerk_user_created,
    dumps,
    meta_headers,
    n8n_headers,
    n8n_result,
    shopify_headers,
    shopify_order,
    whatsapp_text,
)

pytestmark = pytest.mark.django_db

PROVIDERS = ("shopify", "whatsapp", "n8n", "clerk")


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    signing_secrets_forget()
    yield
    signing_secrets_forget()


def new_address() -> str:
    """An address of this test's own (documentation range, a /64 of its own): the suite's
    other refusals from 127.0.0.1 and other processes sharing Redis never touch its bucket."""
    return f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}::7"


def deliver(url: str, body: bytes, headers: dict[str, str], *, source: str) -> Any:
    return Client(REMOTE_ADDR=source).post(
        url, body, content_type="application/json", headers=headers
    )


def rest_get_tenant(key: str) -> Any:
    return Client(REMOTE_ADDR=new_address()).post(
        "/api/v1/tenant/get_tenant",
        {},
        "application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def signed_order(slug: str) -> tuple[bytes, dict[str, str]]:
    body = dumps(shopify_order(order_id=secrets.randbits(40)))
    return body, shopify_headers(body, shop_domain=f"{slug}.myshopify.com")


def junk(provider: str, slug: str) -> tuple[bytes, dict[str, str]]:
    """What an attacker without the secret sends: a plausible delivery, signed with a guess."""
    body = {
        "shopify": lambda: dumps(shopify_order()),
        "whatsapp": lambda: dumps(whatsapp_text()),
        "n8n": lambda: dumps(n8n_result()),
        "clerk": lambda: dumps(clerk_user_created()),
    }[provider]()
    headers = {
        "shopify": lambda: shopify_headers(body, shop_domain=f"{slug}.myshopify.com", secret="x"),
        "whatsapp": lambda: meta_headers(body, secret="guess"),
        "n8n": lambda: n8n_headers(body, secret="guess"),
        "clerk": lambda: {**clerk_headers(body), "svix-signature": "v1,Z3Vlc3M="},
    }[provider]()
    return body, headers


def signed(provider: str, slug: str) -> tuple[bytes, dict[str, str]]:
    """A delivery signed with the connection's real secret."""
    if provider == "shopify":
        return signed_order(slug)
    body = dumps(
        {"whatsapp": whatsapp_text, "n8n": n8n_result, "clerk": clerk_user_created}[provider]()
    )
    sign = {"whatsapp": meta_headers, "n8n": n8n_headers, "clerk": clerk_headers}[provider]
    return body, sign(body)


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    """A tenant connected to every provider, with a per-minute limit of 5 to show quickly
    what the real limit of 1,000 would show slowly."""
    owner = make_tenant(f"rl{secrets.token_hex(4)}", rate_limit=5)
    for provider in PROVIDERS:
        connect(owner.tenant, provider, saas.url)
    return owner


def test_80_unsigned_deliveries_leave_the_tenants_api_answering(shop: Any) -> None:
    """The lock-out as found: unsigned junk was charged to the tenant's own bucket before the
    signature check, and the tenant's REST, MCP and real webhooks then got 429."""
    slug, attacker = shop.tenant.slug, new_address()
    for i in range(80):
        provider = PROVIDERS[i % len(PROVIDERS)]
        answer = deliver(f"/hooks/{provider}/{slug}/", *junk(provider, slug), source=attacker)
        assert answer.status_code == 401, (i, provider, answer.content[:200])
    assert rest_get_tenant(shop.key).status_code == 200
    body, headers = signed_order(slug)
    accepted = deliver(f"/hooks/shopify/{slug}/", body, headers, source=new_address())
    assert accepted.status_code == 200 and accepted.json()["accepted"] is True
    # Authenticated work is what the tenant pays for: 2 used of 5, then 3 more, then 429.
    for _ in range(3):
        body, headers = signed_order(slug)
        assert deliver(f"/hooks/shopify/{slug}/", body, headers, source=new_address()).json()[
            "accepted"
        ]
    body, headers = signed_order(slug)
    limited = deliver(f"/hooks/shopify/{slug}/", body, headers, source=new_address())
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert rest_get_tenant(shop.key).status_code == 429


def test_the_real_limit_over_http(
    make_tenant: Any, connect: Any, saas: Any, web_server: str
) -> None:
    """At the platform's real limit (1,000 a minute) against the app under uvicorn: 1,050
    forged deliveries, more than the whole minute's allowance, and the tenant still works."""
    owner = make_tenant(f"rlh{secrets.token_hex(4)}")
    connect(owner.tenant, "shopify", saas.url)
    slug = owner.tenant.slug
    body, headers = junk("shopify", slug)
    with httpx.Client(base_url=web_server, timeout=30) as client:
        codes = {
            client.post(f"/hooks/shopify/{slug}/", content=body, headers=headers).status_code
            for _ in range(1050)
        }
        assert codes == {401}
        api = client.post(
            "/api/v1/tenant/get_tenant",
            json={},
            headers={"Authorization": f"Bearer {owner.key}"},
        )
        assert api.status_code == 200 and api.json()["slug"] == slug
        signed_body, signed_headers = signed_order(slug)
        real = client.post(f"/hooks/shopify/{slug}/", content=signed_body, headers=signed_headers)
        assert real.status_code == 200 and real.json()["accepted"] is True


def test_a_source_that_keeps_being_refused_is_refused_before_any_work(
    shop: Any, settings: Any
) -> None:
    settings.REFUSALS_PER_SOURCE_PER_MINUTE = 10
    slug, attacker = shop.tenant.slug, new_address()
    before = refused_count("shopify", "source_limited")
    codes = [
        deliver(f"/hooks/shopify/{slug}/", *junk("shopify", slug), source=attacker).status_code
        for _ in range(14)
    ]
    # The 11th is refused as usual, and its charge is the one that finds the bucket empty: from
    # then on this process refuses the source before looking anything up.
    assert codes == [401] * 11 + [429] * 3
    assert refused_count("shopify", "source_limited") == before + 3
    limited = deliver(f"/hooks/n8n/{slug}/", *junk("n8n", slug), source=attacker)
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 61
    assert limited.json()["code"] == "rate_limited"
    # The whole /64 is one source; the same answer for an unknown tenant (nothing to learn).
    neighbour = attacker.replace("::7", "::8")
    unknown = deliver("/hooks/n8n/nobody-here/", *junk("n8n", slug), source=neighbour)
    assert (unknown.status_code, unknown.content) == (limited.status_code, limited.content)
    # Everyone else, and the tenant itself, are untouched.
    body, headers = signed_order(slug)
    assert deliver(f"/hooks/shopify/{slug}/", body, headers, source=new_address()).json()[
        "accepted"
    ]
    assert rest_get_tenant(shop.key).status_code == 200


def test_every_answer_before_the_signature_is_the_same(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    """Unknown tenant, suspended tenant, provider not connected, someone else's shop domain or
    phone number id, no signature, a wrong one, a body that is not JSON: one status, one body.
    The counter and the log line still say which it was."""
    from tenants.lifecycle import Action, Actor, tenant_lifecycle_apply

    connected = make_tenant(f"en{secrets.token_hex(4)}").tenant
    suspended = make_tenant(f"ens{secrets.token_hex(4)}").tenant
    bare = make_tenant(f"enb{secrets.token_hex(4)}").tenant
    for tenant in (connected, suspended):
        for provider in PROVIDERS:
            connect(tenant, provider, saas.url)
    tenant_lifecycle_apply(
        tenant=suspended, action=Action.SUSPEND, actor=Actor.PLATFORM, actor_name="user:t"
    )
    source = new_address()
    answers: dict[str, tuple[int, bytes]] = {}
    for provider in PROVIDERS:
        body, headers = junk(provider, connected.slug)
        good_body, good_headers = signed(provider, suspended.slug)
        cases = {
            "unknown tenant": (f"nobody{secrets.token_hex(3)}", body, headers),
            "not connected": (bare.slug, body, headers),
            # Correctly signed, but the tenant is suspended: still nothing to tell.
            "suspended": (suspended.slug, good_body, good_headers),
            "bad signature": (connected.slug, body, headers),
            "no signature": (connected.slug, body, {}),
            "not JSON": (connected.slug, b"\xff not json", {}),
        }
        if provider == "shopify":
            foreign = dumps(shopify_order())
            cases["another shop"] = (
                connected.slug,
                foreign,
                shopify_headers(foreign, shop_domain="other.myshopify.com", secret="x"),
            )
        if provider == "whatsapp":
            other = dumps(whatsapp_text(phone_number_id="999999"))
            cases["another number"] = (connected.slug, other, meta_headers(other, secret="x"))
        for name, (slug, payload, sent) in cases.items():
            answer = deliver(f"/hooks/{provider}/{slug}/", payload, sent, source=source)
            answers[f"{provider}: {name}"] = (answer.status_code, answer.content)
    assert len(set(answers.values())) == 1, answers
    status, content = next(iter(answers.values()))
    assert status == 401 and UNVERIFIED_MESSAGE.encode() in content
    assert refused_count("shopify", "not_connected") >= 3
    assert refused_count("shopify", "bad_signature") >= 1

    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "x"}
    handshakes = {
        Client(REMOTE_ADDR=source).get(f"/hooks/whatsapp/{slug}/", query).content
        for slug in (f"nobody{secrets.token_hex(3)}", bare.slug, suspended.slug, connected.slug)
    }
    assert len(handshakes) == 1
