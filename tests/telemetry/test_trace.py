"""The telemetry page filtered on one trace (where the topic viewer's trace links lead)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from smarteros.infra.clickhouse import clickhouse_client
from telemetry.schema import clickhouse_migrate
from telemetry.sink import COLUMNS

pytestmark = pytest.mark.django_db(transaction=True)


def insert_call(tenant: str, operation: str, trace_id: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    row = (
        str(uuid.uuid4()),
        now,
        tenant,
        operation,
        "tenant",
        "rest",
        "ok",
        "",
        1.5,
        0,
        0,
        "",
        0,
        0,
        "",
        trace_id,
    )
    client = clickhouse_client()
    try:
        client.execute(f"INSERT INTO operation_calls ({', '.join(COLUMNS)}) VALUES", [row])
    finally:
        client.disconnect()


def test_trace_lists_its_calls_among_the_operators_tenants_only(make_tenant: Any) -> None:
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    clickhouse_migrate()
    mine, other = make_tenant(f"tr{secrets.token_hex(3)}"), make_tenant(f"tr{secrets.token_hex(3)}")
    trace = f"trace-{secrets.token_hex(6)}"
    insert_call(mine.tenant.slug, "tenant_get_tenant", trace)
    insert_call(other.tenant.slug, "secret_other_operation", trace)
    user = get_user_model().objects.create_user("tracer", password="tracer-password-1")
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=mine.tenant, role="viewer")
    client = Client()
    client.force_login(user)
    html = client.get("/telemetry/trace/", {"id": trace}).content.decode()
    assert "tenant_get_tenant" in html and "secret_other_operation" not in html
    bad = client.get("/telemetry/trace/", {"id": "x' OR 1=1"})
    assert bad.status_code == 400 and "id: letters" in bad.content.decode()
