"""The steps of `dr_drill` that run inside the application, pointed at the drill's services by
the environment: seeding the source stack, and proving a restored tenant works (its API key
over REST, a signed Shopify delivery whose secret only the restored Vault can decrypt)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from django.core.management import call_command
from django.test import Client

from smarteros.dr.common import DrError, Progress
from smarteros.events.catalog import tenant_dead_letter_topics, tenant_topics
from smarteros.events.replay import BULK_PRODUCER_CONFIG
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import client_config

# Telemetry rows written per tenant (ClickHouse's share of the backup).
TELEMETRY_ROWS_PER_TENANT = 500
# A delivery made before the backup: after the restore it must be answered as a duplicate.
SEEDED_WEBHOOK_ID = "00000000-0000-4000-8000-00000000d511"


def _shopify_delivery(slug: str, secret: str, webhook_id: str) -> tuple[bytes, dict[str, str]]:
    """An orders/create delivery as Shopify signs it (base64 HMAC-SHA256 of the raw body)."""
    order_id = 820982911946154508
    body = json.dumps(
        {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "email": "jon@example.com",
            "name": "#9999",
            "currency": "EUR",
            "total_price": "403.00",
            "created_at": "2026-11-24T10:00:00-05:00",
            "line_items": [{"id": 866550311766439020, "quantity": 1, "sku": "IPOD-342-N"}],
        }
    ).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return body, {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Shop-Domain": f"{slug}.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-24T15:00:00.000000Z",
    }


def _deliver(slug: str, secret: str, webhook_id: str) -> dict[str, Any]:
    body, headers = _shopify_delivery(slug, secret, webhook_id)
    response = Client().post(
        f"/hooks/shopify/{slug}/", body, content_type="application/json", headers=headers
    )
    if response.status_code != 200:
        raise DrError(f"webhook for {slug}: HTTP {response.status_code} {response.content[:300]!r}")
    return response.json()  # type: ignore[no-any-return]


def drill_seed(*, tenants: int, messages: int, secrets_file: Path, progress: Progress) -> None:
    """Migrate, provision `tenants` tenants connected to Shopify (one delivery each), write
    telemetry rows, and spread `messages` records over their topics. The tenants' API keys and
    signing secrets go to `secrets_file` (an operator keeps them; they are not in a backup)."""
    from integrations.services import integration_connect
    from tenants.provisioning import tenant_provision
    from tenants.scope import dangerously_unscoped
    from tenants.services import tenant_create

    call_command("migrate", verbosity=0)
    call_command("stack_init", stdout=_Quiet())
    held: dict[str, dict[str, str]] = {}
    for number in range(1, tenants + 1):
        slug = f"drill{number}"
        with dangerously_unscoped():  # creating a tenant is platform work
            tenant = tenant_create(slug=slug, name=f"Drill tenant {number}")
        report = tenant_provision(tenant=tenant)
        app_secret = secrets.token_urlsafe(24)
        integration_connect(
            tenant=tenant,
            provider="shopify",
            config={"shop_domain": f"{slug}.myshopify.com"},
            credentials={
                "access_token": f"shpat_{secrets.token_hex(16)}",
                "app_secret": app_secret,
            },
        )
        answer = _deliver(slug, app_secret, SEEDED_WEBHOOK_ID)
        if not answer.get("accepted"):
            raise DrError(f"seed: the first delivery for {slug} was not accepted: {answer}")
        held[slug] = {"api_key": str(report.first_api_key), "shopify_app_secret": app_secret}
        progress(f"seed: tenant {slug} provisioned, connected to Shopify, one delivery accepted")
    secrets_file.write_text(json.dumps(held))
    secrets_file.chmod(0o600)
    _seed_telemetry(list(held))
    _seed_messages(list(held), messages, progress)


class _Quiet:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _seed_telemetry(slugs: list[str]) -> None:
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
    rows = [
        (
            str(uuid.uuid4()),
            start + timedelta(seconds=index),
            slug,
            "tenant_get_tenant",
            "tenant",
            "rest",
            "ok",
            "",
            1.5 + index % 7,
            2,
            180,
            "",
            0,
            0,
            "",
            uuid.uuid4().hex,
        )
        for slug in slugs
        for index in range(TELEMETRY_ROWS_PER_TENANT)
    ]
    client = clickhouse_client()
    try:
        client.execute("INSERT INTO operation_calls VALUES", rows)
    finally:
        client.disconnect()


def _seed_messages(slugs: list[str], count: int, progress: Progress) -> None:
    """`count` event envelopes spread round-robin over every topic and partition of the tenants
    (and the dead-letter topics of the first, created as its first dead letter would), keyed
    and with a header, as the relay would publish them."""
    from smarteros.events.topics import topics_sync

    dead_letters = tenant_dead_letter_topics(slugs[0]) if slugs else []
    topics_sync(dead_letters)
    targets = [
        (spec.name, partition, slug)
        for slug in slugs
        for spec in tenant_topics(slug) + (dead_letters if slug == slugs[0] else [])
        for partition in range(spec.partitions)
    ]
    producer = Producer(client_config(**BULK_PRODUCER_CONFIG))
    produce, poll = producer.produce, producer.poll
    base_ms = int(time.time() * 1000) - count
    filler = "x" * 120
    started = time.monotonic()
    for index in range(count):
        topic, partition, slug = targets[index % len(targets)]
        value = (
            f'{{"id":"{uuid.UUID(int=index)}","type":"drill.seeded","source":"dr_drill",'
            f'"tenant":"{slug}","schema_version":1,"data":{{"n":{index},"note":"{filler}"}}}}'
        ).encode()
        while True:
            try:
                produce(
                    topic,
                    partition=partition,
                    key=f"key-{index}".encode(),
                    value=value,
                    headers=[("type", b"drill.seeded")],
                    timestamp=base_ms + index,
                )
                break
            except BufferError:
                poll(0.05)
        if index and index % 100_000 == 0:
            poll(0)
            progress(f"seed: {index} messages produced")
    if producer.flush(300):
        raise DrError("seed: the broker did not acknowledge every message")
    progress(
        f"seed: {count} messages over {len(targets)} partitions in "
        f"{time.monotonic() - started:.1f}s"
    )


def drill_check(*, secrets_file: Path, wait_for: Path | None, progress: Progress) -> None:
    """For every tenant: an MCP call with its API key, its REST API, the delivery made before
    the backup recognised as a duplicate, and a new signed delivery accepted (its signing secret
    is Vault ciphertext: only the restored keys decrypt it). With `wait_for`, the process starts
    (imports, settings) while the restore runs and checks once that file appears."""
    if wait_for is not None:
        deadline = time.monotonic() + 1800
        while not wait_for.exists():
            if time.monotonic() > deadline:
                raise DrError(f"check: {wait_for} did not appear")
            time.sleep(0.05)
    held: dict[str, dict[str, str]] = json.loads(secrets_file.read_text())
    for slug, tenant in held.items():
        _mcp_get_tenant(slug, tenant["api_key"])
        response = Client().post(
            "/api/v1/tenant/get_tenant",
            "{}",
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant['api_key']}"},
        )
        if response.status_code != 200 or response.json().get("slug") != slug:
            raise DrError(f"REST tenant/get_tenant for {slug}: HTTP {response.status_code}")
        repeat = _deliver(slug, tenant["shopify_app_secret"], SEEDED_WEBHOOK_ID)
        if not repeat.get("duplicate"):
            raise DrError(f"the delivery made before the backup is new again for {slug}: {repeat}")
        fresh = _deliver(slug, tenant["shopify_app_secret"], str(uuid.uuid4()))
        if not fresh.get("accepted"):
            raise DrError(f"a new signed delivery for {slug} was not accepted: {fresh}")
        progress(
            f"check: {slug}: MCP tenant_get_tenant and REST answer with its API key, the old "
            "delivery is a duplicate, a new signed delivery is accepted"
        )


def _mcp_get_tenant(slug: str, api_key: str) -> None:
    """tenant_get_tenant through an MCP session (initialize, tools/call) with the server that
    `mcp_serve` runs for this API key, connected in memory instead of over stdio."""
    import anyio
    from mcp import Client as McpClient

    from mcp_tools.auth import BoundKey
    from mcp_tools.server import build_server

    bound_key = BoundKey(api_key)
    server = build_server(lambda ctx: bound_key.principal(), surface="mcp-stdio")

    async def call() -> Any:
        async with McpClient(server, read_timeout_seconds=60) as client:
            return await client.call_tool("tenant_get_tenant", {})

    result = anyio.run(call)
    if result.is_error or (result.structured_content or {}).get("slug") != slug:
        raise DrError(f"MCP tenant_get_tenant for {slug} failed: {result.content}")


STEPS: dict[str, Callable[..., None]] = {"seed": drill_seed, "check": drill_check}
