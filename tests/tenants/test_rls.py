"""Row-level security, proven with raw SQL as the role the application connects as."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import DatabaseError, ProgrammingError, connection, connections, transaction

from tenants.models import ApiKey, Tenant
from tenants.scope import dangerously_unscoped, tenant_read_scope, tenant_scope

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def tenant_owned_tables() -> set[str]:
    return {
        model._meta.db_table
        for model in apps.get_models()
        if any(f.name in ("tenant", "tenant_id") for f in model._meta.concrete_fields)
    }


def seed_rows(tenant: Tenant, user: Any) -> None:
    from effects.models import Effect
    from integrations.models import (
        IntegrationConnection,
        N8nTrigger,
        WebhookDelivery,
        WhatsAppMessage,
    )
    from mcp_tools.models import AgentSession, UpstreamServer
    from smarteros.models import OutboxEvent
    from tenants.audit import audit_record
    from tenants.models import Membership
    from tenants.services import api_key_create

    api_key_create(tenant=tenant, name="k")
    Membership.objects.create(user=user, tenant=tenant, role="viewer")
    UpstreamServer.objects.create(
        tenant=tenant, name="s", transport="http", url="http://127.0.0.1:1/mcp"
    )
    AgentSession.objects.create(tenant=tenant, label="l")
    IntegrationConnection.objects.create(
        tenant=tenant, provider="shopify", credentials_ciphertext="vault:v1:x"
    )
    WhatsAppMessage.objects.create(
        tenant=tenant, phone="+14155550123", direction="inbound", text="hi"
    )
    N8nTrigger.objects.create(tenant=tenant, topic="shopify.webhooks", webhook_path="p")
    WebhookDelivery.objects.create(tenant=tenant, provider="shopify", delivery_id="wh-1")
    OutboxEvent.objects.create(
        event_id=uuid.uuid4(), tenant_id=tenant.pk, topic="t", event_type="e", payload={}
    )
    audit_record(actor="user:viewer", action="test", tenant=tenant)
    Effect.objects.create(tenant=tenant, kind="whatsapp.send_message", key="k", payload={})


@pytest.fixture
def three_tenants() -> list[Tenant]:
    with dangerously_unscoped():
        tenants = [Tenant.objects.create(slug=s, name=s) for s in ("acme", "globex", "initech")]
        user = get_user_model().objects.create(username="viewer")
        for tenant in tenants:
            seed_rows(tenant, user)
    return tenants


def count(table: str, on: Any = connection) -> tuple[int, set[int]]:
    with on.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(array_agg(DISTINCT tenant_id), '{{}}') FROM {table}"
        )
        total, tenant_ids = cursor.fetchone()
    return total, set(tenant_ids)


def test_the_application_role_is_subject_to_rls() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


def test_every_tenant_owned_table_has_a_forced_policy() -> None:
    tables = tenant_owned_tables() | {"tenants_tenant"}
    assert len(tables) >= 8
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)",
            [list(tables)],
        )
        flags = {name: (rls, forced) for name, rls, forced in cursor.fetchall()}
    assert flags == dict.fromkeys(tables, (True, True))


def test_no_tenant_means_no_rows_and_a_tenant_means_only_its_rows(
    three_tenants: list[Tenant],
) -> None:
    tables = tenant_owned_tables()
    with transaction.atomic():
        for table in tables:
            assert count(table) == (0, set()), table
    for tenant in three_tenants:
        with tenant_scope(tenant.pk):
            for table in tables:
                total, owners = count(table)
                assert total >= 1 and owners == {tenant.pk}, table
    with dangerously_unscoped() as platform:
        for table in tables:
            assert count(table, platform)[1] == {t.pk for t in three_tenants}, table


def test_a_tenant_cannot_write_rows_of_another(three_tenants: list[Tenant]) -> None:
    acme, globex, _ = three_tenants
    with (
        pytest.raises(DatabaseError, match="row-level security"),
        tenant_scope(acme.pk),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO mcp_tools_agentsession (id, tenant_id, label, metadata, created_at) "
            "VALUES (gen_random_uuid(), %s, 'x', '{}', now())",
            [globex.pk],
        )
    with tenant_scope(acme.pk), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mcp_tools_agentsession SET label = 'taken' WHERE tenant_id = %s", [globex.pk]
        )
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM tenants_apikey WHERE tenant_id = %s", [globex.pk])
        assert cursor.rowcount == 0


@pytest.mark.django_db(transaction=True)
def test_the_read_scope_carries_the_tenant_with_each_statement_and_no_further(
    three_tenants: list[Tenant],
) -> None:
    acme = three_tenants[0]
    tables = tenant_owned_tables()
    assert not connection.in_atomic_block  # the one-round-trip path, not the fallback
    with tenant_read_scope(acme.pk):
        for table in tables:
            total, owners = count(table)
            assert total >= 1 and owners == {acme.pk}, table
        assert {key.tenant_id for key in ApiKey.objects.all()} == {acme.pk}
        with dangerously_unscoped() as platform:
            assert count("tenants_apikey", platform)[1] == {t.pk for t in three_tenants}
        assert count("tenants_apikey")[1] == {acme.pk}
        with pytest.raises(ProgrammingError, match="single client-side statements"):
            connection.cursor().executemany("SELECT %s", [[1], [2]])
    for table in tables:
        assert count(table) == (0, set()), table


def test_the_read_scope_inside_a_transaction_ends_with_its_block(
    three_tenants: list[Tenant],
) -> None:
    acme = three_tenants[0]
    with transaction.atomic():
        with tenant_read_scope(acme.pk):
            assert count("tenants_apikey")[1] == {acme.pk}
        assert count("tenants_apikey") == (0, set())


def app_login() -> psycopg.Connection[Any]:
    """A raw connection with the application's own credentials, as a compromised process has."""
    db = connections["default"].settings_dict
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        autocommit=True,
    )


def visible(conn: psycopg.Connection[Any], tables: set[str]) -> dict[str, int]:
    return {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        for table in sorted(tables)
    }


def test_the_tenants_table_has_a_forced_policy_too(three_tenants: list[Tenant]) -> None:
    acme = three_tenants[0]
    with tenant_scope(acme.pk):
        assert list(Tenant.objects.all()) == [acme]
    assert list(Tenant.objects.all()) == []
    with dangerously_unscoped():
        assert Tenant.objects.count() == 3


def test_the_app_login_cannot_switch_rls_off_whatever_it_sets(three_tenants: list[Tenant]) -> None:
    tables = tenant_owned_tables() | {"tenants_tenant"}
    nothing = dict.fromkeys(sorted(tables), 0)
    platform_role = connections["platform"].settings_dict["USER"]
    with app_login() as conn:
        for attempt in (
            "SET app.bypass_rls = 'on'",
            "SELECT set_config('app.bypass_rls', 'on', false)",
            "RESET ROLE",
            "RESET SESSION AUTHORIZATION",
        ):
            conn.execute(attempt)  # accepted, and changes nothing
            assert visible(conn, tables) == nothing, attempt
        # With row_security off, a query that RLS would filter fails instead of bypassing it.
        conn.execute("SET row_security = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            visible(conn, tables)
        conn.execute("RESET row_security")
        for escalation in (
            f"SET ROLE {platform_role}",
            f"SET SESSION AUTHORIZATION {platform_role}",
            f"GRANT {platform_role} TO current_user",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(escalation)
        member = conn.execute(
            "SELECT pg_has_role(current_user, %s, 'MEMBER')", [platform_role]
        ).fetchone()
        assert member == (False,)
        assert visible(conn, tables) == nothing


def test_a_tenant_transaction_sees_its_own_rows_even_with_the_old_bypass_set(
    three_tenants: list[Tenant],
) -> None:
    acme = three_tenants[0]
    with app_login() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", [str(acme.pk)])
        conn.execute("SELECT set_config('app.bypass_rls', 'on', true)")
        owners = conn.execute("SELECT DISTINCT tenant_id FROM tenants_apikey").fetchall()
        assert owners == [(acme.pk,)]
        assert conn.execute("SELECT id FROM tenants_tenant").fetchall() == [(acme.pk,)]


def test_dangerously_unscoped_runs_as_the_platform_role_and_a_nested_tenant_scope_does_not(
    three_tenants: list[Tenant],
) -> None:
    acme = three_tenants[0]
    platform_role = connections["platform"].settings_dict["USER"]
    with dangerously_unscoped() as platform:
        with platform.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            assert cursor.fetchone() == (platform_role, True)
        assert {k.tenant_id for k in ApiKey.objects.all()} == {t.pk for t in three_tenants}
        with tenant_scope(acme.pk):
            assert {k.tenant_id for k in ApiKey.objects.all()} == {acme.pk}
        assert ApiKey.objects.count() == 3
    assert ApiKey.objects.count() == 0


def test_the_platform_role_may_use_every_table_and_tables_created_later() -> None:
    platform_role = connections["platform"].settings_dict["USER"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND NOT has_table_privilege(%s, c.oid, 'SELECT,INSERT,UPDATE,DELETE')",
            [platform_role],
        )
        assert cursor.fetchall() == []
        cursor.execute("CREATE TABLE later_table (id bigint GENERATED BY DEFAULT AS IDENTITY)")
        try:
            cursor.execute(
                "SELECT has_table_privilege(%s, 'later_table', 'SELECT,INSERT,UPDATE,DELETE')",
                [platform_role],
            )
            assert cursor.fetchone() == (True,)
        finally:
            cursor.execute("DROP TABLE later_table")
