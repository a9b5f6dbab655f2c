"""Webhooks in, tried as an attacker and as a misbehaving provider: forged and foreign
deliveries, floods, retries after failures, repeats, and bodies that are too big, too deep or
not what the provider documents. Each refusal has its status, a JSON error, a log line and a
counter, and stores nothing."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db import connection

from integrations.inbound import UNVERIFIED_MESSAGE, refused_count, signing_secrets_forget
from integrations.models import WebhookDelivery, WhatsAppMessage
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.fixtures.deliveries import (
    META_APP_SECRET,
    PHONE_NUMBER_ID,
    SHOPIFY_APP_SECRET,
    dumps,
    hmac_base64,
    meta_headers,
    n8n_headers,
    n8n_result,
    post,
    shopify_headers,
    shopify_order,
    whatsapp_status,
    whatsapp_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_VAULT = "http://127.0.0.1:9"  # discard port: nothing listens


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    signing_secrets_forget()
    yield
    signing_secrets_forget()


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    """A tenant connected to Shopify, WhatsApp and n8n (signing secrets of the deliveries
    fixtures; shop `<slug>.myshopify.com`, phone number id PHONE_NUMBER_ID)."""
    tenant = make_tenant(f"wh{secrets.token_hex(4)}").tenant
    for provider in ("shopify", "whatsapp", "n8n"):
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


def events(tenant: Any, topic: str) -> list[dict[str, Any]]:
    with dangerously_unscoped():
        rows = OutboxEvent.objects.filter(topic=f"{tenant.slug}.{topic}").order_by("id")
        return [
            json.loads(row.payload) if isinstance(row.payload, str) else row.payload for row in rows
        ]


def order_headers(tenant: Any, body: bytes, **kwargs: Any) -> dict[str, str]:
    return shopify_headers(body, shop_domain=f"{tenant.slug}.myshopify.com", **kwargs)


class Refusals:
    """Asserts a refusal: status, JSON error, one more on its counter, a log line, and
    nothing stored since the last reset."""

    PROVIDERS = ("shopify", "whatsapp", "n8n")

    def __init__(self, caplog: Any) -> None:
        self.caplog = caplog
        self.reset()

    def reset(self) -> None:
        from integrations.inbound import REFUSED_COUNTER
        from smarteros.infra.redis import get_redis

        self.before = stored()
        self.counts = {
            p: {
                k: int(v)
                for k, v in get_redis().hgetall(REFUSED_COUNTER.format(provider=p)).items()
            }
            for p in self.PROVIDERS
        }
        self.caplog.clear()

    def check(self, response: Any, status: int, provider: str, reason: str) -> dict[str, Any]:
        assert response.status_code == status, response.content[:300]
        body = response.json()
        assert body["code"] and body["message"]
        assert refused_count(provider, reason) == self.counts[provider].get(reason, 0) + 1
        assert any(
            f"reason={reason}" in r.getMessage() and f"provider={provider}" in r.getMessage()
            for r in self.caplog.records
        )
        assert stored() == self.before
        self.reset()
        return dict(body)


@pytest.fixture
def refusals(caplog: Any) -> Refusals:
    caplog.set_level(logging.WARNING, logger="integrations.inbound")
    return Refusals(caplog)


def test_a_shopify_delivery_is_accepted_once_and_its_repeat_answered_as_a_duplicate(
    shop: Any,
) -> None:
    body = dumps(shopify_order())
    headers = order_headers(shop, body, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    first = post(f"/hooks/shopify/{shop.slug}/", body, headers)
    assert first.status_code == 200 and first.json() == {"accepted": True, "duplicate": False}
    repeat = post(f"/hooks/shopify/{shop.slug}/", body, headers)
    assert repeat.status_code == 200
    assert repeat.json() == {"accepted": False, "duplicate": True}
    [event] = events(shop, "shopify.webhooks")
    assert event["data"]["webhook_id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event["data"]["payload"]["id"] == 820982911946154508


def test_a_shopify_delivery_whose_first_attempt_failed_is_accepted_on_retry(shop: Any) -> None:
    """The database refuses the outbox insert mid-way through the first attempt (a trigger
    raising admin_shutdown): Shopify's retry, same webhook id, must then be accepted."""
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'database going down' USING ERRCODE = 'admin_shutdown'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER refuse_outbox BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
        )
    body = dumps(shopify_order())
    headers = order_headers(shop, body)
    try:
        failed = post(f"/hooks/shopify/{shop.slug}/", body, headers)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER refuse_outbox ON {table}")
            cursor.execute("DROP FUNCTION refuse_outbox()")
    assert failed.status_code == 503
    assert failed.json()["code"] == "dependency_unavailable"
    assert stored()[:2] == (0, 0)  # neither the event nor the dedupe mark
    retry = post(f"/hooks/shopify/{shop.slug}/", body, headers)
    assert retry.json() == {"accepted": True, "duplicate": False}
    assert len(events(shop, "shopify.webhooks")) == 1


def test_an_accepted_delivery_is_three_statements(shop: Any) -> None:
    """Find the tenant, find its connection, then claim the delivery and queue its event in one
    statement: no BEGIN, set_config or COMMIT round trips around them."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    warm = dumps(shopify_order(order_id=1))  # decrypts the signing secret, which stays cached
    assert post(f"/hooks/shopify/{shop.slug}/", warm, order_headers(shop, warm)).status_code == 200
    body = dumps(shopify_order(order_id=2))
    with (
        CaptureQueriesContext(connections["platform"]) as platform,
        CaptureQueriesContext(connections["default"]) as app,
    ):
        answer = post(f"/hooks/shopify/{shop.slug}/", body, order_headers(shop, body))
    assert answer.json() == {"accepted": True, "duplicate": False}
    assert len(platform) == 1 and platform[0]["sql"].startswith("SELECT")
    assert len(app) == 2, [q["sql"][:80] for q in app]
    assert "WITH claim AS" in app[1]["sql"]
    assert len(events(shop, "shopify.webhooks")) == 2


def test_an_event_its_schema_refuses_leaves_no_claim_behind(shop: Any) -> None:
    """The event is checked before the statement runs: nothing is written, and the corrected
    delivery with the same id is accepted once."""
    from integrations.deliveries import delivery_event_accept
    from smarteros.events.outbox import tenant_event
    from smarteros.events.schemas import InvalidEvent

    def accept(data: dict[str, Any]) -> Any:
        event = tenant_event(
            tenant=shop,
            topic="shopify.webhooks",
            event_type="shopify.webhook.received",
            data=data,
            key="gid://shopify/Order/1",
            source="tests",
            trace_id="0" * 32,
        )
        return delivery_event_accept(
            tenant=shop, provider="shopify", delivery_id="delivery-1", event=event
        )

    with pytest.raises(InvalidEvent, match="payload"):
        accept({"topic": "orders/create", "webhook_id": "delivery-1"})
    assert stored() == (0, 0, 0)
    valid = {"topic": "orders/create", "webhook_id": "delivery-1", "payload": {"id": 1}}
    assert accept(valid) is not None
    assert accept(valid) is None  # the repeat
    assert stored()[:2] == (1, 1)


def test_concurrent_attempts_of_one_delivery_are_accepted_once(shop: Any) -> None:
    """Shopify may retry while the first attempt is still running: the unique delivery row
    makes the second wait for the first's commit, then see it as a duplicate."""
    from django.db import connections

    body = dumps(shopify_order())
    headers = order_headers(shop, body)
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(6)

    def attempt() -> None:
        try:
            start.wait()
            answers.append(post(f"/hooks/shopify/{shop.slug}/", body, headers).json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a["accepted"] for a in answers) == [False] * 5 + [True]
    assert len(events(shop, "shopify.webhooks")) == 1


def test_the_same_n8n_result_delivered_twice_has_one_effect(shop: Any, refusals: Refusals) -> None:
    body = dumps(n8n_result(execution_id="231"))
    first = post(f"/hooks/n8n/{shop.slug}/", body, n8n_headers(body))
    assert first.json()["accepted"] is True
    again = post(f"/hooks/n8n/{shop.slug}/", body, n8n_headers(body))
    assert again.status_code == 200 and again.json() == {"accepted": False, "duplicate": True}
    [event] = events(shop, "n8n.automation.result")
    assert event["data"]["execution_id"] == "231"
    assert event["data"]["whatsapp_text"] == "Your order is confirmed"

    refusals.reset()
    no_id = dumps({"workflow": "order-created", "whatsapp_text": "hi"})
    body_ = refusals.check(
        post(f"/hooks/n8n/{shop.slug}/", no_id, n8n_headers(no_id)), 400, "n8n", "bad_payload"
    )
    assert "execution_id" in body_["message"]


def test_whatsapp_messages_and_statuses_are_each_accepted_once(shop: Any) -> None:
    url = f"/hooks/whatsapp/{shop.slug}/"
    message = dumps(whatsapp_text(message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRB"))
    assert post(url, message, meta_headers(message)).json() == {
        "accepted": True,
        "duplicate": False,
        "messages": 1,
        "statuses": 0,
        "repeats": 0,
        "ignored": 0,
    }
    assert post(url, message, meta_headers(message)).json() == {
        "accepted": False,
        "duplicate": True,
    }
    [received] = events(shop, "whatsapp.inbound")
    assert received["data"] == {
        "from": "+16505551234",
        "text": "Does it come in another color?",
        "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRB",
        "kind": "text",
        "content": {"body": "Does it come in another color?"},
    }
    for status in ("sent", "delivered", "failed"):
        note = dumps(whatsapp_status(message_id="wamid.out.1", status=status))
        assert post(url, note, meta_headers(note)).json()["statuses"] == 1
        assert post(url, note, meta_headers(note)).json()["duplicate"] is True
    statuses = events(shop, "whatsapp.outbound")
    assert [e["data"]["status"] for e in statuses] == ["sent", "delivered", "failed"]
    assert statuses[-1]["data"]["errors"][0]["code"] == 131047
    assert statuses[-1]["data"]["to"] == "+16505551234"


def test_what_needs_no_secret_is_refused_before_vault_is_asked(
    shop: Any, settings: Any, refusals: Refusals
) -> None:
    """With Vault unreachable, a URL naming no connection is still answered, with the answer a
    bad signature gets; a connected tenant's delivery needs the secret before anything about it
    is judged (even a foreign shop domain), so Vault's outage is named (503)."""
    settings.VAULT_ADDR = DEAD_VAULT
    body = dumps(shopify_order())
    answer = refusals.check(
        post("/hooks/shopify/no-such-tenant/", body, order_headers(shop, body)),
        401,
        "shopify",
        "not_connected",
    )
    assert answer["message"] == UNVERIFIED_MESSAGE
    foreign = shopify_headers(body, shop_domain="other-shop.myshopify.com")
    unavailable = post(f"/hooks/shopify/{shop.slug}/", body, foreign)
    assert unavailable.status_code == 503 and "Vault" in unavailable.json()["message"]
    assert stored() == refusals.before


def test_a_signed_delivery_for_another_account_is_403_and_one_malformed_400(
    shop: Any, refusals: Refusals
) -> None:
    """Once the signature verifies the sender is the provider, and is told what is wrong."""
    body = dumps(shopify_order())
    foreign = shopify_headers(body, shop_domain="other-shop.myshopify.com")
    answer = refusals.check(
        post(f"/hooks/shopify/{shop.slug}/", body, foreign), 403, "shopify", "foreign_delivery"
    )
    assert "X-Shopify-Shop-Domain" in answer["message"]
    headerless = order_headers(shop, body)
    del headerless["X-Shopify-Webhook-Id"]
    answer = refusals.check(
        post(f"/hooks/shopify/{shop.slug}/", body, headerless), 400, "shopify", "bad_payload"
    )
    assert "X-Shopify-Webhook-Id" in answer["message"]
    other_number = dumps(whatsapp_text(phone_number_id="999999"))
    refusals.check(
        post(f"/hooks/whatsapp/{shop.slug}/", other_number, meta_headers(other_number)),
        403,
        "whatsapp",
        "foreign_delivery",
    )


def test_signing_secrets_are_cached_in_memory_and_renewed_when_the_connection_changes(
    shop: Any, settings: Any, connect: Any, saas: Any
) -> None:
    url = f"/hooks/shopify/{shop.slug}/"
    body = dumps(shopify_order())
    assert post(url, body, order_headers(shop, body)).status_code == 200
    settings.VAULT_ADDR, vault = DEAD_VAULT, settings.VAULT_ADDR
    # Vault is gone, the secret is still in this process's memory.
    assert post(url, body, order_headers(shop, body)).json()["accepted"] is True
    settings.VAULT_ADDR = vault
    connect(shop, "shopify", saas.url)  # saved again: a new updated_at, a new cache key
    settings.VAULT_ADDR = DEAD_VAULT
    assert post(url, body, order_headers(shop, body)).status_code == 503
    settings.VAULT_ADDR = vault
    settings.WEBHOOK_SECRET_CACHE_SECONDS = 0
    assert post(url, body, order_headers(shop, body)).status_code == 200
    settings.VAULT_ADDR = DEAD_VAULT
    assert post(url, body, order_headers(shop, body)).status_code == 503  # not cached


def test_bad_signatures_are_401(shop: Any, refusals: Refusals) -> None:
    body = dumps(shopify_order())
    forged = order_headers(shop, body, secret="not-the-app-secret")
    refusals.check(
        post(f"/hooks/shopify/{shop.slug}/", body, forged), 401, "shopify", "bad_signature"
    )
    tampered = order_headers(shop, body)
    refusals.check(
        post(f"/hooks/shopify/{shop.slug}/", body.replace(b"403.00", b"0.01"), tampered),
        401,
        "shopify",
        "bad_signature",
    )
    message = dumps(whatsapp_text())
    refusals.check(
        post(f"/hooks/whatsapp/{shop.slug}/", message, {"X-Hub-Signature-256": "sha256=00"}),
        401,
        "whatsapp",
        "bad_signature",
    )
    result = dumps(n8n_result())
    refusals.check(
        post(f"/hooks/n8n/{shop.slug}/", result, n8n_headers(result, secret=META_APP_SECRET)),
        401,
        "n8n",
        "bad_signature",
    )


def test_the_verification_handshake_checks_the_verify_token(
    make_tenant: Any, refusals: Refusals
) -> None:
    from integrations.services import integration_connect

    tenant = make_tenant(f"hs{secrets.token_hex(3)}").tenant
    integration_connect(
        tenant=tenant,
        provider="whatsapp",
        config={"phone_number_id": PHONE_NUMBER_ID, "verify_token": "verify-me"},
        credentials={"access_token": "EAAtoken", "app_secret": META_APP_SECRET},
    )
    from django.test import Client

    url = f"/hooks/whatsapp/{tenant.slug}/"
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    ok = Client().get(url, {**query, "hub.verify_token": "verify-me"})
    assert ok.status_code == 200 and ok.content == b"1158201444"
    refusals.check(
        Client().get(url, {**query, "hub.verify_token": "guess"}),
        403,
        "whatsapp",
        "bad_verify_token",
    )
    refusals.check(Client().put(url, b"{}"), 405, "whatsapp", "method")


def test_integration_connect_writes_the_external_id_webhooks_compare(
    make_tenant: Any,
) -> None:
    from integrations.services import integration_connect

    tenant = make_tenant(f"ext{secrets.token_hex(3)}").tenant
    saved = integration_connect(
        tenant=tenant,
        provider="shopify",
        config={"shop_domain": " Acme-Store.MyShopify.com "},
        credentials={"access_token": "shpat_x", "app_secret": SHOPIFY_APP_SECRET},
    )
    assert saved.external_id == "acme-store.myshopify.com"
    with pytest.raises(ValueError, match="shop_domain"):
        integration_connect(
            tenant=tenant,
            provider="shopify",
            config={"shop_domain": "https://evil.example.com"},
            credentials={"access_token": "shpat_x"},
        )
    with pytest.raises(ValueError, match="phone_number_id"):
        integration_connect(
            tenant=tenant,
            provider="whatsapp",
            config={"phone_number_id": "+1 555"},
            credentials={"access_token": "EAA"},
        )


# Over real HTTP, against the ASGI app under uvicorn: what a provider (or an attacker) sees.


def _signed_whatsapp(payload: Any) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else dumps(payload)
    return body, {"Content-Type": "application/json", **meta_headers(body)}


def test_signed_but_malformed_bodies_are_400_with_json_never_5xx(
    shop: Any, web_server: str
) -> None:
    message = whatsapp_text()
    nul_text = json.loads(json.dumps(message))
    nul_text["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "hi\x00there"
    long_from = json.loads(json.dumps(message))
    long_from["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "1" * 17
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    cases: dict[str, tuple[bytes | Any, str]] = {
        "NUL in text": (nul_text, "NUL"),
        "from longer than 16": (long_from, "from"),
        "entry not a list": ({"object": "whatsapp_business_account", "entry": "notalist"}, "entry"),
        "a list body": ([message], "body"),
        "a string body": ('"hello"', "body"),
        "JSON 1,000 deep": (deep, "nested deeper"),
        "not UTF-8": (b'{"object": "\xff\xfe"}', "not valid JSON"),
        "NaN": (b'{"object": NaN}', "NaN"),
        "lone surrogate": (b'{"object": "\\ud800"}', "Unicode"),
        "not JSON": (b"object=whatsapp", "not valid JSON"),
    }
    before = stored()
    for name, (payload, named) in cases.items():
        body, headers = _signed_whatsapp(payload.encode() if isinstance(payload, str) else payload)
        response = httpx.post(
            f"{web_server}/hooks/whatsapp/{shop.slug}/", content=body, headers=headers
        )
        assert response.status_code == 400, (name, response.text[:300])
        assert response.json()["code"] == "invalid_payload", name
        assert named in response.json()["message"], (name, response.json())
    order = shopify_order()
    order["note"] = "gift\x00wrap"
    body = dumps(order)
    response = httpx.post(
        f"{web_server}/hooks/shopify/{shop.slug}/",
        content=body,
        headers={"Content-Type": "application/json", **order_headers(shop, body)},
    )
    assert response.status_code == 400 and "body.note" in response.json()["message"]
    assert stored() == before


def test_a_body_over_the_limit_is_413_before_it_is_read(shop: Any, web_server: str) -> None:
    big = shopify_order()
    big["note"] = "x" * (2 * 1024 * 1024)
    body = dumps(big)
    headers = {"Content-Type": "application/json", **order_headers(shop, body)}
    url = f"{web_server}/hooks/shopify/{shop.slug}/"
    before = stored()
    response = httpx.post(url, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = httpx.post(url, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert stored() == before


def test_the_body_limit_is_a_setting(shop: Any, settings: Any, refusals: Refusals) -> None:
    settings.WEBHOOK_MAX_BODY_BYTES = 2048
    order = shopify_order()
    order["note"] = "x" * 2048
    body = dumps(order)
    refusals.check(
        post(f"/hooks/shopify/{shop.slug}/", body, order_headers(shop, body)),
        413,
        "shopify",
        "too_large",
    )
    small = dumps(shopify_order())
    assert (
        post(f"/hooks/shopify/{shop.slug}/", small, order_headers(shop, small)).status_code == 200
    )


def test_process_webhook_takes_only_deliveries_signed_by_the_shop(
    shop: Any, make_tenant: Any
) -> None:
    """Any key holder may call it, so it checks what the webhook URL checks: the connected shop
    and the HMAC of the raw body with the shop's app secret."""
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute
    from tenants.services import api_key_create

    with dangerously_unscoped():
        key = api_key_create(tenant=shop, name="caller", scopes=None).secret
    principal = principal_from_api_key(key)
    raw = json.dumps(shopify_order())
    args = {
        "topic": "orders/create",
        "webhook_id": "8d4c9d0e-3d5c-4a5e-9b8e-1c6f6e1a2b3c",
        "shop_domain": f"{shop.slug}.myshopify.com",
        "hmac_sha256": hmac_base64(SHOPIFY_APP_SECRET, raw.encode()),
        "raw_body": raw,
    }
    injected = execute(
        "shopify_process_webhook",
        {**args, "hmac_sha256": hmac_base64("made-up", raw.encode())},
        principal=principal,
        surface="rest",
    )
    assert injected.error is not None and injected.error.code == "invalid_input"
    assert "hmac_sha256" in injected.error.message
    reserialised = execute(
        "shopify_process_webhook",
        {**args, "raw_body": json.dumps(shopify_order(), indent=1)},
        principal=principal,
        surface="rest",
    )
    assert reserialised.error is not None and "hmac_sha256" in reserialised.error.message
    foreign = execute(
        "shopify_process_webhook",
        {**args, "shop_domain": "someone-else.myshopify.com"},
        principal=principal,
        surface="rest",
    )
    assert foreign.error is not None and foreign.error.code == "permission_denied"
    assert events(shop, "shopify.webhooks") == []
    accepted = execute("shopify_process_webhook", args, principal=principal, surface="rest")
    assert accepted.output == {
        "accepted": True,
        "duplicate": False,
        "topic": f"{shop.slug}.shopify.webhooks",
    }
    # The same delivery arriving later at the webhook URL is a duplicate.
    headers = order_headers(shop, raw.encode(), webhook_id=args["webhook_id"])
    assert post(f"/hooks/shopify/{shop.slug}/", raw.encode(), headers).json()["duplicate"] is True
    assert len(events(shop, "shopify.webhooks")) == 1


def test_a_secret_vault_cannot_decrypt_is_the_platforms_503_not_a_500(shop: Any) -> None:
    from tenants.secrets import tenant_vault_remove

    tenant_vault_remove(slug=shop.slug)  # the tenant's Transit key is gone
    body = dumps(shopify_order())
    response = post(f"/hooks/shopify/{shop.slug}/", body, order_headers(shop, body))
    assert response.status_code == 503
    assert response.json()["code"] == "dependency_unavailable"
    assert "Vault" in response.json()["message"]


def test_a_bad_key_is_named_escaped_so_it_cannot_forge_log_lines(shop: Any, caplog: Any) -> None:
    """Found by fuzzing: a refused key was echoed raw (NUL, line breaks, any length) into the
    error and the log line."""
    caplog.set_level(logging.WARNING, logger="integrations.inbound")
    forged = "x\x00\n2026-01-01 WARNING all good" + "y" * 500
    order = {**shopify_order(), forged: 1}
    body = dumps(order)
    before = stored()
    response = post(f"/hooks/shopify/{shop.slug}/", body, order_headers(shop, body))
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("body.x\\u0000\\u000a2026-01-01 WARNING all good")
    assert "\n" not in message and "\x00" not in message and len(message) < 200
    logged = [r.getMessage() for r in caplog.records if "webhook refused" in r.getMessage()]
    assert logged and all("\n" not in line and "\x00" not in line for line in logged)
    assert stored() == before
