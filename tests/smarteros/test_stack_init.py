"""`stack_init` on every start: the tenants' missing topics created, nothing asked per topic that
exists (a thousand tenants' topics would take minutes on the local broker)."""

from __future__ import annotations

import secrets
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from smarteros.events.catalog import platform_topics, tenant_topics
from smarteros.events.topics import topic_configs
from smarteros.infra.kafka import admin_client
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)


def test_stack_init_creates_missing_tenant_topics_and_leaves_existing_ones(broker: Any) -> None:
    slug = f"init{secrets.token_hex(3)}"
    with dangerously_unscoped():
        Tenant.objects.create(slug=slug, name="Started", status=Tenant.Status.ACTIVE)
    first = StringIO()
    call_command("stack_init", stdout=first)
    present = set(admin_client().list_topics(timeout=10).topics)
    assert {s.name for s in tenant_topics(slug) + platform_topics()} <= present
    assert (
        f"{len(tenant_topics(slug))} created" in first.getvalue() or "created" in first.getvalue()
    )

    # An existing tenant topic is left as it is (its configs are `topics sync`'s to align).
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    name = f"{slug}.shopify.webhooks"
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin = admin_client()  # kept until its futures resolve
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()
    again = StringIO()
    call_command("stack_init", stdout=again)
    assert ", 0 created" in again.getvalue()
    assert topic_configs([name])[name]["retention.ms"] == "1000"
    call_command("topics", "sync", stdout=StringIO())
    assert topic_configs([name])[name]["retention.ms"] != "1000"
