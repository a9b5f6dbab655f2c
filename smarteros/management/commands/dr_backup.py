"""manage.py dr_backup DIR"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.dr.backup import dr_backup
from smarteros.dr.clickhouse import http_url
from smarteros.dr.common import DrError, Timer


class Command(BaseCommand):
    help = (
        "Back up PostgreSQL, every Kafka topic, the ClickHouse tables and OpenBao's storage into "
        "DIR (new or empty), with a manifest of versions, counts and checksums."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--clickhouse-http-url",
            default=os.environ.get("DR_CLICKHOUSE_HTTP_URL", ""),
            help="ClickHouse's HTTP interface (default DR_CLICKHOUSE_HTTP_URL, else CLICKHOUSE_URL's host on 8123).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        timer = Timer()
        say = lambda line: self.stdout.write(f"[{timer.seconds:6.1f}s] {line}")  # noqa: E731
        try:
            manifest = dr_backup(
                options["directory"],
                clickhouse_http=http_url(options["clickhouse_http_url"]),
                progress=say,
            )
        except DrError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"backed up {manifest['postgres']['rows']} database rows, "
            f"{manifest['kafka']['records']} records of {manifest['kafka']['topics']} topics, "
            f"{manifest['clickhouse']['rows']} ClickHouse rows and "
            f"{len(manifest['vault']['keys'])} Transit keys: {manifest['bytes']} bytes "
            f"in {manifest['seconds']['total']:.1f}s"
        )
