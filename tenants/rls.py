"""Row-level security for tenant-owned tables, as migration operations.

Each table gets one policy: a row is visible and writable only when its tenant_id equals the
transaction's `app.tenant_id`. FORCE makes the policy apply to the table owner too, which is the
role the application connects as. Platform-wide work needs no branch here: it runs as a separate
role with BYPASSRLS (see tenants.scope.dangerously_unscoped), which the policy never sees.
"""

from __future__ import annotations

from django.db import migrations

POLICY = "tenant_isolation"
CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::bigint"
CONDITION = f"tenant_id = {CURRENT_TENANT}"


def rls_statements(table: str, condition: str = CONDITION) -> tuple[str, ...]:
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY} ON {table} USING ({condition}) WITH CHECK ({condition})",
    )


def rls_reverse_statements(table: str) -> tuple[str, ...]:
    return (
        f"DROP POLICY IF EXISTS {POLICY} ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    )


def enable_rls(*tables: str) -> list[migrations.RunSQL]:
    return [
        migrations.RunSQL(sql=rls_statements(table), reverse_sql=rls_reverse_statements(table))
        for table in tables
    ]
