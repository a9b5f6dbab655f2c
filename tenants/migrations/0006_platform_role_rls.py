"""Row-level security that no application session can switch off.

Every tenant_isolation policy loses its `app.bypass_rls` branch: platform-wide work now runs as
the platform role (BYPASSRLS), which this migration grants the table privileges it needs, today
and for tables created later. The tenants table gets the same protection: a tenant's session sees
its own row only.
"""

from django.conf import settings
from django.db import migrations

from tenants.rls import CONDITION, CURRENT_TENANT, POLICY, rls_reverse_statements, rls_statements

OLD_CONDITION = f"current_setting('app.bypass_rls', true) = 'on' OR {CONDITION}"


def _rewrite_policies(condition: str) -> str:
    # Every table of this schema with the policy, whichever app created it.
    return f"""
DO $$
DECLARE t record;
BEGIN
  FOR t IN SELECT tablename FROM pg_policies
           WHERE schemaname = current_schema() AND policyname = '{POLICY}'
             AND tablename <> 'tenants_tenant'
  LOOP
    EXECUTE format($f$ALTER POLICY {POLICY} ON %I USING ({condition}) WITH CHECK ({condition})$f$,
                   t.tablename);
  END LOOP;
END $$;
"""


def _grants(apps: object, schema_editor: object) -> None:
    role = settings.DATABASES["platform"]["USER"]
    quote = schema_editor.quote_name  # type: ignore[attr-defined]
    # Tests point the platform alias at the app's own login: nothing to grant to oneself.
    if not role or role == settings.DATABASES["default"]["USER"]:
        return
    role = quote(role)
    privileges = "SELECT, INSERT, UPDATE, DELETE"
    for sql in (
        f"GRANT {privileges} ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {privileges} ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
    ):
        schema_editor.execute(sql)  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_tenant_deletion"),
        ("smarteros", "0004_cheaper_event_tables"),
        ("integrations", "0003_row_level_security"),
        ("mcp_tools", "0002_row_level_security"),
    ]

    operations = [
        migrations.RunSQL(
            sql=_rewrite_policies(CONDITION), reverse_sql=_rewrite_policies(OLD_CONDITION)
        ),
        migrations.RunSQL(
            sql=rls_statements("tenants_tenant", f"id = {CURRENT_TENANT}"),
            reverse_sql=rls_reverse_statements("tenants_tenant"),
        ),
        migrations.RunPython(_grants, migrations.RunPython.noop),
    ]
