from typing import Any

from django.core.management.base import BaseCommand, CommandError

from smarteros.events.topics import topics_sync
from smarteros.infra import vault


class Command(BaseCommand):
    help = "Create Kafka topics, the Vault Transit mount and the ClickHouse schema."

    def handle(self, *args: Any, **options: Any) -> None:
        steps = [
            ("Kafka topics", self._topics),
            ("Vault Transit mount", self._vault),
            ("ClickHouse schema", self._clickhouse),
        ]
        for label, step in steps:
            try:
                outcome = step()
            except Exception as exc:
                raise CommandError(f"{label}: {type(exc).__name__}: {exc}") from exc
            self.stdout.write(f"  {label}: {outcome}")

    def _topics(self) -> str:
        from smarteros.events.catalog import platform_topics
        from smarteros.events.status import catalog_for_all_tenants
        from smarteros.infra.kafka import admin_client

        # Every start: the platform's topics in line with the catalog, and the tenants' topics
        # the broker lacks created. One listing instead of a creation attempt, a describe and
        # a configs request for each of thousands of tenants' topics (minutes on the local
        # broker); `manage.py topics sync` brings existing tenant topics' configs in line.
        catalog = catalog_for_all_tenants()
        present = set(admin_client().list_topics(timeout=60).topics)
        platform = {spec.name for spec in platform_topics()}
        wanted = [s for s in catalog if s.name in platform or s.name not in present]
        # Batches sized to the broker, each reported: thousands of tenants' topics take a while.
        changes = topics_sync(wanted, progress=lambda line: self.stdout.write(f"    {line}"))
        created = [c.topic for c in changes if c.action == "created"]
        drifted = [f"{c.topic} ({c.detail})" for c in changes if c.action == "drifted"]
        parts = [f"{len(catalog)} in catalog, {len(created)} created"]
        if drifted:
            parts.append("drifted: " + ", ".join(drifted))
        return "; ".join(parts)

    def _vault(self) -> str:
        return "enabled" if vault.ensure_transit_mount() else "already enabled"

    def _clickhouse(self) -> str:
        from telemetry.schema import clickhouse_migrate

        applied = clickhouse_migrate()
        return f"applied {', '.join(applied)}" if applied else "up to date"
