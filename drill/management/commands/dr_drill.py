"""manage.py dr_drill [--messages N]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from drill.rehearsal import dr_drill
from smarteros.dr.common import DrError, Timer


class Command(BaseCommand):
    help = (
        "Rehearse a disaster recovery on services of its own (free ports, never the shared "
        "ones): seed, dr_backup, dr_restore into empty services, check a restored tenant, print "
        "the RTO. The last line is `rto_seconds: N`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--messages", type=int, default=1_000_000)
        parser.add_argument("--tenants", type=int, default=3)
        parser.add_argument(
            "--workdir", type=Path, help="Where the drill's folder goes (default: the temp dir)."
        )
        parser.add_argument(
            "--keep", action="store_true", help="Keep the drill's folder (backup, logs)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["messages"] < 0 or options["tenants"] < 1:
            raise CommandError("--messages must be >= 0 and --tenants >= 1")
        timer = Timer()
        say = lambda line: self.stdout.write(f"[{timer.seconds:6.1f}s] {line}")  # noqa: E731
        try:
            report = dr_drill(
                messages=options["messages"],
                tenants=options["tenants"],
                workdir=options["workdir"],
                keep=options["keep"],
                progress=say,
            )
        except DrError as exc:
            raise CommandError(f"drill failed: {exc}") from None
        manifest = report.manifest
        sizes = {
            part: sum(
                info["bytes"]
                for name, info in manifest["files"].items()
                if name.startswith(part + "/")
            )
            for part in ("postgres", "kafka", "clickhouse", "vault")
        }
        self.stdout.write(
            f"verified: {manifest['postgres']['rows']} database rows, "
            f"{manifest['kafka']['records']} records of {manifest['kafka']['topics']} topics, "
            f"{manifest['clickhouse']['rows']} ClickHouse rows, "
            f"{len(manifest['vault']['keys'])} Transit keys: counts and checksums match"
        )
        self.stdout.write(
            f"backup_seconds: {report.backup_seconds:.1f}  backup_bytes: {report.backup_bytes} "
            + " ".join(f"({part} {size})" for part, size in sizes.items())
        )
        self.stdout.write(
            f"restore_seconds: {report.restore_seconds:.1f}  "
            f"tenant_checks_seconds: {report.check_seconds:.1f}"
        )
        self.stdout.write(f"rto_seconds: {report.rto_seconds:.1f}")
