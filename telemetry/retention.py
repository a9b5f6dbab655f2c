"""Per-tenant telemetry retention without TTL (which Debian's old ClickHouse lacks): whole day
partitions older than the longest retention are dropped; a tenant with a shorter retention has
its older rows deleted by a mutation (ALTER TABLE ... DELETE), which runs on old and current
ClickHouse alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings

from smarteros.infra.clickhouse import clickhouse_client
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped

TABLES = {"operation_calls": "time", "topic_messages": "minute", "llm_usage": "time"}


def telemetry_retention_enforce() -> dict[str, int]:
    """Apply every tenant's retention; returns partitions dropped and tenants trimmed."""
    days = settings.TELEMETRY_RETENTION_DAYS
    longest = max(days.values())
    cutoff = datetime.now(UTC) - timedelta(days=longest)
    with dangerously_unscoped():
        plans = list(Tenant.objects.values_list("slug", "plan"))
    client = clickhouse_client(timeout=30)
    dropped = trimmed = 0
    try:
        database = client.execute("SELECT currentDatabase()")[0][0]
        for table, column in TABLES.items():
            partitions = client.execute(
                "SELECT DISTINCT partition FROM system.parts WHERE database = %(d)s AND table = %(t)s AND active",
                {"d": database, "t": table},
            )
            for (partition,) in partitions:
                if partition.strip("'").isdigit() and int(partition.strip("'")) < int(
                    cutoff.strftime("%Y%m%d")
                ):
                    client.execute(f"ALTER TABLE {table} DROP PARTITION {partition}")
                    dropped += 1
            for slug, plan in plans:
                keep = days.get(plan, longest)
                if keep < longest:
                    client.execute(
                        f"ALTER TABLE {table} DELETE WHERE tenant = %(s)s AND {column} < now() - %(sec)s",
                        {"s": slug, "sec": keep * 86400},
                    )
                    trimmed += 1
    finally:
        client.disconnect()
    return {"partitions_dropped": dropped, "tenant_trims": trimmed}
