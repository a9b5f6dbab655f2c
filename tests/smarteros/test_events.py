"""The event backbone against a real Kafka-API broker of the test's own: flows end to end, a
broker outage mid-stream, poison messages, retries, two workers in a group, backup and restore."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from django.test import Client

from smarteros.events import outbox
from smarteros.events.catalog import tenant_topics
from smarteros.events.consumers import GroupWorker, Registration, registrations
from smarteros.events.outbox import relay_batch
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import client_config
from smarteros.models import OutboxEvent, ProcessedEvent
from tenants.scope import dangerously_unscoped
from tests.conftest import wait_for
from tests.processes import kafka_broker, start_kafka_broker
from tests.smarteros.backbone import read_all, unsent

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


@contextlib.contextmanager
def running(*workers: GroupWorker) -> Iterator[None]:
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)


def worker(group: str, **kwargs: Any) -> GroupWorker:
    regs = [r for r in registrations() if r.group == group]
    return GroupWorker(group, regs, retry_delays=(0.05, 0.1), **FAST, **kwargs)


def relay_all() -> int:
    total = 0
    while sent := relay_batch(flush_timeout=5):
        total += sent
    return total


def signed(secret: str, body: bytes, *, shopify: bool = False) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if shopify else "sha256=" + digest.hex()


@pytest.fixture
def shop(make_tenant: Any, saas: Any) -> Any:
    """A provisioned tenant with Shopify, WhatsApp (and a bot) and n8n connected to the fakes."""
    from integrations.models import N8nTrigger
    from integrations.services import integration_connect
    from tests.fixtures.saas import LLM_KEY, N8N_KEY, SHOPIFY_TOKEN, WHATSAPP_TOKEN

    tk = make_tenant(f"shop{secrets.token_hex(3)}")
    tenant = tk.tenant
    topics_sync(tenant_topics(tenant.slug))
    integration_connect(
        tenant=tenant,
        provider="shopify",
        config={"shop_domain": "s.myshopify.com", "api_base_url": saas.url},
        credentials={"access_token": SHOPIFY_TOKEN, "app_secret": "shopify-app-secret"},
    )
    integration_connect(
        tenant=tenant,
        provider="whatsapp",
        config={
            "phone_number_id": "123",
            "api_base_url": saas.url,
            "llm_base_url": saas.url,
            "verify_token": "verify-me",
        },
        credentials={
            "access_token": WHATSAPP_TOKEN,
            "llm_api_key": LLM_KEY,
            "app_secret": "meta-app-secret",
        },
    )
    integration_connect(
        tenant=tenant,
        provider="n8n",
        config={"base_url": saas.url},
        credentials={"api_key": N8N_KEY, "webhook_secret": "n8n-secret"},
    )
    with dangerously_unscoped():
        N8nTrigger.objects.create(
            tenant=tenant, topic="shopify.webhooks", webhook_path="order-created"
        )
    return tenant


def requests_to(saas: Any, path_part: str) -> list[Any]:
    return [r for r in saas.state.requests if path_part in r[1]]


def outbound_count(tenant: Any) -> int:
    from integrations.models import WhatsAppMessage

    with dangerously_unscoped():
        return WhatsAppMessage.objects.filter(tenant=tenant, direction="outbound").count()


def test_flows_from_signed_webhooks_to_their_effects(broker: Any, shop: Any, saas: Any) -> None:
    client = Client()
    order = json.dumps({"id": 820982911946154508, "email": "jon@example.com"}).encode()
    bad = client.post(
        f"/hooks/shopify/{shop.slug}/",
        order,
        content_type="application/json",
        HTTP_X_SHOPIFY_HMAC_SHA256="AAAA",
        HTTP_X_SHOPIFY_TOPIC="orders/create",
        HTTP_X_SHOPIFY_WEBHOOK_ID="wh-1",
        HTTP_X_SHOPIFY_SHOP_DOMAIN="s.myshopify.com",
    )
    assert bad.status_code == 401
    with dangerously_unscoped():
        assert not OutboxEvent.objects.filter(tenant_id=shop.pk).exists()
    for _ in range(2):  # Shopify retries with the same webhook id: accepted once
        response = client.post(
            f"/hooks/shopify/{shop.slug}/",
            order,
            content_type="application/json",
            HTTP_X_SHOPIFY_HMAC_SHA256=signed("shopify-app-secret", order, shopify=True),
            HTTP_X_SHOPIFY_TOPIC="orders/create",
            HTTP_X_SHOPIFY_WEBHOOK_ID="wh-1",
            HTTP_X_SHOPIFY_SHOP_DOMAIN="s.myshopify.com",
        )
        assert response.status_code == 200
    result = json.dumps(
        {
            "workflow": "order-created",
            "execution_id": "4711",
            "whatsapp_to": "+14155550100",
            "whatsapp_text": "Your order is confirmed",
        }
    ).encode()
    assert (
        client.post(
            f"/hooks/n8n/{shop.slug}/",
            result,
            content_type="application/json",
            HTTP_X_SMARTEROS_SIGNATURE=signed("n8n-secret", result),
        ).status_code
        == 200
    )
    inbound = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": "123",
                                },
                                "messages": [
                                    {
                                        "from": "14155550111",
                                        "id": "wamid.in.42",
                                        "timestamp": "1700000000",
                                        "type": "text",
                                        "text": {"body": "Where is my order?"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    assert (
        client.post(
            f"/hooks/whatsapp/{shop.slug}/",
            inbound,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=signed("meta-app-secret", inbound),
        ).status_code
        == 200
    )
    challenge = client.get(
        f"/hooks/whatsapp/{shop.slug}/",
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert challenge.content == b"1158201444"

    assert relay_all() == 3
    workers = [worker("flow-n8n-forward"), worker("flow-n8n-whatsapp"), worker("flow-whatsapp-bot")]
    with running(*workers):
        wait_for(lambda: requests_to(saas, "/webhook/order-created"), timeout=60)
        wait_for(lambda: outbound_count(shop) == 2, timeout=60)
    n8n_call = requests_to(saas, "/webhook/order-created")
    assert len(n8n_call) == 1
    assert n8n_call[0][3]["event"]["data"]["payload"]["email"] == "jon@example.com"
    sent = [r[3] for r in requests_to(saas, "/messages") if r[3] and "text" in r[3]]
    assert {m["text"]["body"] for m in sent} == {
        "Your order is confirmed",
        "Thanks! You said: Where is my order?",
    }
    with dangerously_unscoped():
        processed = [
            g.rsplit(".", 1)[-1] for g in ProcessedEvent.objects.values_list("group", flat=True)
        ]
        assert processed.count("flow-n8n-whatsapp") == processed.count("flow-whatsapp-bot") == 1
        # The forwarding flow reads only topics with a trigger: the webhook's, not the inbound
        # message's or the result's.
        assert processed.count("flow-n8n-forward") == 1
        assert (
            OutboxEvent.objects.filter(
                tenant_id=shop.pk, topic=f"{shop.slug}.n8n.automation.trigger"
            ).count()
            == 1
        )


def n8n_result(tenant: Any, index: int) -> None:
    from smarteros.events.envelope import Envelope
    from tenants.scope import tenant_scope

    with tenant_scope(tenant.pk):
        outbox.outbox_emit(
            topic=f"{tenant.slug}.n8n.automation.result",
            key=f"k{index}",
            tenant_id=tenant.pk,
            envelope=Envelope(
                type="n8n.workflow.result",
                source="test",
                tenant=tenant.slug,
                data={"whatsapp_to": "+14155550100", "whatsapp_text": f"msg {index}"},
            ),
        )


def test_broker_outage_mid_stream_loses_nothing_and_applies_nothing_twice(
    broker: Any, shop: Any, saas: Any, settings: Any
) -> None:
    port = broker.port
    consumer = worker("flow-n8n-whatsapp")
    with running(consumer):
        for i in range(40):
            n8n_result(shop, i)
        relay_all()
        wait_for(lambda: outbound_count(shop) == 40, timeout=60)
        broker.stop()
        for i in range(40, 100):  # requests keep succeeding: events wait in the outbox
            n8n_result(shop, i)
        with pytest.raises(RuntimeError, match="did not acknowledge"):
            relay_batch(flush_timeout=2)
        with dangerously_unscoped():
            waiting = OutboxEvent.objects.filter(
                sent_at__isnull=True, topic__endswith=".n8n.automation.result"
            )
            assert waiting.count() == 60
        restarted = start_kafka_broker(port)
        try:
            wait_for(lambda: _relay_quietly() == 0 and unsent() == 0, timeout=90, interval=1)
            wait_for(lambda: outbound_count(shop) == 100, timeout=90)
            time.sleep(2)
        finally:
            consumer.stop()
            time.sleep(1)
            restarted.stop()
    texts = [r[3]["text"]["body"] for r in requests_to(saas, "/messages")]
    assert sorted(texts) == sorted(f"msg {i}" for i in range(100))  # each effect exactly once
    assert outbound_count(shop) == 100


def _relay_quietly() -> int:
    try:
        return relay_all()
    except RuntimeError:
        return -1


def raw_producer() -> Producer:
    return Producer(client_config())


def test_poison_messages_and_failing_handlers_are_dead_lettered(
    broker: Any, shop: Any, saas: Any
) -> None:
    topic = f"{shop.slug}.n8n.automation.result"
    producer = raw_producer()
    producer.produce(topic, value=b"not json at all")
    producer.produce(topic, value=json.dumps({"id": "x", "type": "n8n.workflow.result"}).encode())
    producer.produce(
        topic, value=json.dumps({"type": "no.such.type", "source": "t", "data": {}}).encode()
    )
    producer.produce(
        topic,
        value=json.dumps(
            {
                "type": "n8n.workflow.result",
                "source": "t",
                "tenant": shop.slug,
                "data": {"whatsapp_to": "not a phone"},
            }
        ).encode(),
    )
    producer.flush(10)
    attempts: list[str] = []

    def explode(envelope: Any) -> None:
        attempts.append(envelope.id)
        raise RuntimeError("handler bug")

    failing = GroupWorker(
        "explode",
        [Registration("*.n8n.automation.result", "n8n.workflow.result", "explode", explode)],
        retry_delays=(0.05, 0.05),
        **FAST,
    )
    healthy = worker("flow-n8n-whatsapp")
    n8n_result(shop, 1)
    relay_all()
    with running(failing, healthy):
        dead = read_all(f"{topic}.dlq", 4 + 1 + 4)
        wait_for(lambda: outbound_count(shop) == 1, timeout=30)  # the valid event still flows
    reasons = [dict(m.headers())["dlq.reason"].decode() for m in dead]
    assert sum("invalid event" in r for r in reasons) == 8  # 4 poison messages, seen by both groups
    assert any("Invalid JSON" in r for r in reasons)
    assert any("unknown event type 'no.such.type'" in r for r in reasons)
    assert any("whatsapp_to" in r for r in reasons)
    assert [r for r in reasons if r.startswith("explode: RuntimeError: handler bug")]
    assert len(attempts) == 3  # one try and two retries, then the dead letter


def test_not_connected_integration_dead_letters_with_that_reason(
    broker: Any, make_tenant: Any
) -> None:
    from integrations.models import IntegrationConnection

    bare = make_tenant(f"bare{secrets.token_hex(3)}").tenant
    topics_sync(tenant_topics(bare.slug))
    with dangerously_unscoped():  # connected to n8n (results come from it), not to WhatsApp
        IntegrationConnection.objects.create(
            tenant=bare, provider="n8n", credentials_ciphertext="vault:v1:unused"
        )
    n8n_result(bare, 1)
    relay_all()
    with running(worker("flow-n8n-whatsapp")):
        dead = read_all(f"{bare.slug}.n8n.automation.result.dlq", 1)
    assert (
        dict(dead[0].headers())["dlq.reason"]
        .decode()
        .endswith(
            f"integration_not_connected: whatsapp is not connected for tenant {bare.slug}; "
            "a tenant admin connects it on the console's Integrations page "
            f"(/tenants/{bare.slug}/integrations/)"
        )
    )


def test_two_workers_in_one_group_share_the_partitions(broker: Any, shop: Any) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def recorder(name: str) -> Any:
        def record(envelope: Any) -> None:
            seen[name].append(envelope.id)

        return record

    group = "shared"
    a = GroupWorker(
        group, [Registration("*.n8n.automation.result", "*", group, recorder("a"))], **FAST
    )
    b = GroupWorker(
        group, [Registration("*.n8n.automation.result", "*", group, recorder("b"))], **FAST
    )
    with running(a, b):
        time.sleep(8)  # both join before the events arrive
        for i in range(60):
            n8n_result(shop, i)
        relay_all()
        wait_for(lambda: len(seen["a"]) + len(seen["b"]) >= 60, timeout=60)
    assert seen["a"] and seen["b"]
    assert len(set(seen["a"]) | set(seen["b"])) == 60 and not set(seen["a"]) & set(seen["b"])


def test_backup_then_restore_into_a_fresh_broker_gives_identical_messages(
    broker: Any, shop: Any, tmp_path: Path, settings: Any
) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    producer = raw_producer()
    products = f"{shop.slug}.shopify.products"
    for i in range(30):
        producer.produce(
            products,
            key=f"gid://shopify/Product/{i % 10}".encode(),
            value=f"v{i}".encode(),
            headers=[("event-type", b"shopify.product.snapshot"), ("n", str(i).encode())],
            timestamp=1_700_000_000_000 + i,
        )
        producer.produce(
            "smarteros.events", key=f"k{i}".encode(), value=json.dumps({"i": i}).encode()
        )
    producer.flush(10)
    original = {t: snapshot(t, 30) for t in (products, "smarteros.events")}
    call_command("topics", "backup", str(tmp_path / "backup"))
    with kafka_broker() as fresh:
        call_command(
            "topics",
            "restore",
            str(tmp_path / "backup"),
            "--bootstrap-servers",
            f"127.0.0.1:{fresh.port}",
        )
        settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{fresh.port}"
        for topic, records in original.items():
            assert snapshot(topic, 30) == records
        with pytest.raises(CommandError, match="already holds records"):
            call_command(
                "topics",
                "restore",
                str(tmp_path / "backup"),
                "--bootstrap-servers",
                f"127.0.0.1:{fresh.port}",
            )
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["topics"][products]["config"]["cleanup.policy"] == "compact"
    victim = tmp_path / "backup" / manifest["topics"][products]["files"]["0"]["file"]
    victim.write_bytes(victim.read_bytes()[:-3])
    with pytest.raises(CommandError, match=f"{victim.name}: checksum mismatch"):
        call_command("topics", "restore", str(tmp_path / "backup"))
    victim.unlink()
    with pytest.raises(CommandError, match=f"{victim.name}: missing"):
        call_command("topics", "restore", str(tmp_path / "backup"))


def snapshot(topic: str, expected: int) -> list[tuple[Any, ...]]:
    return sorted(
        (m.partition(), m.offset(), m.key(), m.value(), tuple(m.headers() or []), m.timestamp()[1])
        for m in read_all(topic, expected)
    )
