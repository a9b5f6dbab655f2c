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
        from smarteros.events.status import catalog_for_all_tenants

        # Batches sized to the broker, each reported: thousands of tenants' topics take a while.
        changes = topics_sync(
            catalog_for_all_tenants(), progress=lambda line: self.stdout.write(f"    {line}")
        )
        created = [c.topic for c in changes if c.action == "created"]
        drifted = [f"{c.topic} ({c.detail})" for c in changes if c.action == "drifted"]
        parts = [f"{len(changes)} in catalog, {len(created)} created"]
        if drifted:
            parts.append("drifted: " + ", ".join(drifted))
        return "; ".join(parts)

    def _vault(self) -> str:
        return "enabled" if vault.ensure_transit_mount() else "already enabled"

    def _clickhouse(self) -> str:
        from telemetry.schema import clickhouse_migrate

        applied = clickhouse_migrate()
        return f"applied {', '.join(applied)}" if applied else "up to date"
