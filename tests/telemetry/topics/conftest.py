"""Fixtures for the topic viewer: a broker of the test's own with two tenants' topics, operators
with each role, and websockets against the real ASGI app."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from smarteros.events.catalog import tenant_every_topic
from smarteros.events.envelope import Envelope
from smarteros.events.topics import topics_sync


@dataclass
class World:
    acme: Any
    globex: Any
    users: dict[str, Any]

    def cookie(self, name: str) -> str:
        client = Client()
        client.force_login(self.users[name])
        return client.cookies["sessionid"].value

    def client(self, name: str) -> Client:
        client = Client()
        client.force_login(self.users[name])
        return client


@pytest.fixture
def world(broker: Any, make_tenant: Callable[..., Any]) -> World:
    """Tenants acme and globex with their topics; operators: acme-viewer, acme-admin,
    globex-admin, root (platform admin)."""
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme").tenant
    globex = make_tenant("globex").tenant
    topics_sync(tenant_every_topic("acme") + tenant_every_topic("globex"))  # with dead letters
    User = get_user_model()
    users = {
        "acme-viewer": User.objects.create_user("acme-viewer", password="pw-acme-viewer"),
        "acme-admin": User.objects.create_user("acme-admin", password="pw-acme-admin"),
        "globex-admin": User.objects.create_user("globex-admin", password="pw-globex-admin"),
        "root": User.objects.create_superuser("root", "root@example.com", "pw-root"),
    }
    with dangerously_unscoped():
        Membership.objects.create(user=users["acme-viewer"], tenant=acme, role="viewer")
        Membership.objects.create(user=users["acme-admin"], tenant=acme, role="admin")
        Membership.objects.create(user=users["globex-admin"], tenant=globex, role="admin")
    return World(acme, globex, users)


def produce(
    topic: str,
    value: Any,
    *,
    key: str | None = None,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    timestamp: int | None = None,
) -> None:
    """Produce one message and wait until the broker has it."""
    from confluent_kafka import Producer
    from django.conf import settings

    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    kwargs: dict[str, Any] = {"key": key, "value": raw, "headers": headers or []}
    if partition is not None:
        kwargs["partition"] = partition
    if timestamp is not None:
        kwargs["timestamp"] = timestamp
    producer.produce(topic, **kwargs)
    assert producer.flush(10) == 0


def envelope(event_type: str, data: dict[str, Any], tenant: str = "acme") -> dict[str, Any]:
    return json.loads(
        Envelope(type=event_type, source="test", tenant=tenant, data=data).model_dump_json()
    )


def now_ms() -> int:
    return int(time.time() * 1000)
