"""Row-level security for tenant-owned tables, as migration operations.

Each table gets one policy: a row is visible and writable only when its tenant_id equals the
transaction's `app.tenant_id`, or inside `dangerously_unscoped()`. FORCE makes the policy apply to
the table owner too, which is the role the application connects as.
"""

from __future__ import annotations

from django.db import migrations

POLICY = "tenant_isolation"
CONDITION = (
    "current_setting('app.bypass_rls', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint"
)


def enable_rls(*tables: str) -> list[migrations.RunSQL]:
    return [
        migrations.RunSQL(
            sql=[
                f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
                f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
                f"CREATE POLICY {POLICY} ON {table} USING ({CONDITION}) WITH CHECK ({CONDITION})",
            ],
            reverse_sql=[
                f"DROP POLICY IF EXISTS {POLICY} ON {table}",
                f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
                f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
            ],
        )
        for table in tables
    ]
