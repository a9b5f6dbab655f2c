from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

PASSWORD = "console-test-pw-1"


@dataclass
class World:
    acme: Any
    globex: Any
    acme_key: str
    users: dict[str, Any]

    def client(self, who: str) -> Client:
        client = Client()
        client.force_login(self.users[who])
        return client


def calls_insert(slug: str, *, ok: int, errors: int, operation: str = "tenant_get_tenant") -> None:
    """Telemetry rows for a tenant, written straight into ClickHouse as the sink writes them."""
    from datetime import datetime

    from smarteros.infra.clickhouse import clickhouse_client

    now = datetime.now().replace(microsecond=0)
    rows = [
        {
            "event_id": f"{slug}-{operation}-{i}-{secrets.token_hex(4)}",
            "time": now,
            "tenant": slug,
            "operation": operation,
            "service": operation.split("_")[0],
            "surface": "rest",
            "status": "ok" if i < ok else "error",
            "error_type": "" if i < ok else "invalid_input",
            "latency_ms": 2.0 + i,
            "input_bytes": 0,
            "output_bytes": 0,
            "model": "",
            "tokens_in": 0,
            "tokens_out": 0,
            "session_id": "",
            "trace_id": "",
        }
        for i in range(ok + errors)
    ]
    client = clickhouse_client()
    try:
        client.execute("INSERT INTO operation_calls VALUES", rows)
    finally:
        client.disconnect()


def dead_letters_insert(slug: str, messages: int) -> None:
    """Messages counted on a tenant's dead-letter topic, as the topic counter writes them."""
    from datetime import datetime

    from smarteros.infra.clickhouse import clickhouse_client

    client = clickhouse_client()
    try:
        client.execute(
            "INSERT INTO topic_messages (minute, tenant, topic, messages) VALUES",
            [
                {
                    "minute": datetime.now().replace(second=0, microsecond=0),
                    "tenant": slug,
                    "topic": f"{slug}.shopify.webhooks.dlq",
                    "messages": messages,
                }
            ],
        )
    finally:
        client.disconnect()


@pytest.fixture
def world(make_tenant: Any) -> World:
    """acme and globex (fresh slugs: the broker and Vault outlive the test database), with a
    platform admin, an admin and a viewer of acme, and an admin of globex."""
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    suffix = secrets.token_hex(3)
    acme = make_tenant(f"acme{suffix}")
    globex = make_tenant(f"globex{suffix}")
    model = get_user_model()
    users = {
        "platform": model.objects.create_superuser("platform", "p@example.com", PASSWORD),
        "admin": model.objects.create_user("acme-admin", password=PASSWORD),
        "viewer": model.objects.create_user("acme-viewer", password=PASSWORD),
        "globex": model.objects.create_user("globex-admin", password=PASSWORD),
    }
    with dangerously_unscoped():
        Membership.objects.create(user=users["admin"], tenant=acme.tenant, role="admin")
        Membership.objects.create(user=users["viewer"], tenant=acme.tenant, role="viewer")
        Membership.objects.create(user=users["globex"], tenant=globex.tenant, role="admin")
    return World(acme.tenant, globex.tenant, acme.key, users)
