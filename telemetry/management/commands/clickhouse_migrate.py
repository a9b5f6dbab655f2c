from typing import Any

from django.core.management.base import BaseCommand

from telemetry.schema import clickhouse_migrate


class Command(BaseCommand):
    help = "Apply the ClickHouse telemetry schema (idempotent, versioned)."

    def handle(self, *args: Any, **options: Any) -> None:
        applied = clickhouse_migrate()
        self.stdout.write(f"applied: {', '.join(applied)}" if applied else "up to date")
