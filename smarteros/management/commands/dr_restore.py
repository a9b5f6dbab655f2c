"""manage.py dr_restore DIR"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.dr.clickhouse import http_url
from smarteros.dr.common import DrError, Timer
from smarteros.dr.restore import dr_restore


class Command(BaseCommand):
    help = (
        "Restore a dr_backup directory into the configured (fresh, empty) PostgreSQL, Kafka, "
        "ClickHouse and OpenBao, verifying every checksum and count."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--postgres-admin-url",
            default=os.environ.get("DR_POSTGRES_ADMIN_URL", ""),
            help="A superuser of the target server, to create the roles and the database "
            "(default DR_POSTGRES_ADMIN_URL).",
        )
        parser.add_argument(
            "--clickhouse-http-url",
            default=os.environ.get("DR_CLICKHOUSE_HTTP_URL", ""),
            help="ClickHouse's HTTP interface (default DR_CLICKHOUSE_HTTP_URL, else CLICKHOUSE_URL's host on 8123).",
        )
        parser.add_argument(
            "--vault-unseal-keys-file",
            type=Path,
            default=os.environ.get("DR_VAULT_UNSEAL_KEYS_FILE") or None,
            help='JSON with the source cluster\'s unseal keys ({"keys": [...]}), to unseal '
            "after the snapshot is installed (default DR_VAULT_UNSEAL_KEYS_FILE).",
        )
        parser.add_argument(
            "--vault-restored-separately",
            action="store_true",
            help="OpenBao's storage was restored by hand (a file-storage server: its volume); "
            "only check that every Transit key of the backup is there.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace what the target services hold instead of refusing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["postgres_admin_url"]:
            raise CommandError(
                "--postgres-admin-url (or DR_POSTGRES_ADMIN_URL) is required: a superuser of "
                "the target PostgreSQL creates the roles and the database"
            )
        timer = Timer()
        say = lambda line: self.stdout.write(f"[{timer.seconds:6.1f}s] {line}")  # noqa: E731
        try:
            report = dr_restore(
                options["directory"],
                postgres_admin_url=options["postgres_admin_url"],
                clickhouse_http=http_url(options["clickhouse_http_url"]),
                vault_unseal_keys_file=options["vault_unseal_keys_file"],
                force=options["force"],
                progress=say,
                vault_restored_separately=options["vault_restored_separately"],
            )
        except DrError as exc:
            raise CommandError(str(exc)) from None
        counts = report["counts"]
        self.stdout.write(
            f"restored and verified {counts['postgres_rows']} database rows, "
            f"{counts['kafka_records']} Kafka records, {counts['clickhouse_rows']} ClickHouse "
            f"rows and {counts['vault_keys']} Transit keys in {timer.seconds:.1f}s"
        )
