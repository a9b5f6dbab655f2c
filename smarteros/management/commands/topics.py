"""manage.py topics sync | status | backup DIR | restore DIR"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.events.backup import BackupError, topics_backup, topics_restore
from smarteros.events.catalog import tenant_topics
from smarteros.events.status import catalog_for_all_tenants, consumer_lag, topics_state
from smarteros.events.topics import topics_sync


class Command(BaseCommand):
    help = "Kafka topics: sync the catalog to the broker, show status and lag, back up, restore."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("sync", help="Create missing catalog topics (platform and every tenant's).")
        status = sub.add_parser(
            "status", help="Catalog against broker, and consumer lag per group."
        )
        status.add_argument("--json", action="store_true")
        status.add_argument("--tenant", help="Only this tenant's topics (by slug).")
        status.add_argument("--no-lag", action="store_true", help="Skip consumer lag.")
        for name, text in (
            ("backup", "Write every topic to DIR."),
            ("restore", "Replay DIR into an empty broker."),
        ):
            command = sub.add_parser(name, help=text)
            command.add_argument("directory", type=Path)
            command.add_argument(
                "--bootstrap-servers", help="Another broker than KAFKA_BOOTSTRAP_SERVERS."
            )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "sync":
            changes = topics_sync(catalog_for_all_tenants())
            for change in changes:
                if change.action != "unchanged":
                    self.stdout.write(f"{change.action:9} {change.topic} {change.detail}".rstrip())
            counts = {
                a: sum(1 for c in changes if c.action == a)
                for a in ("created", "updated", "drifted", "unchanged")
            }
            self.stdout.write(
                f"{len(changes)} topics: " + ", ".join(f"{n} {a}" for a, n in counts.items())
            )
        elif action == "status":
            self._status(options["json"], tenant=options["tenant"], lag=not options["no_lag"])
        else:
            progress = lambda line: self.stdout.write(f"  {line}")  # noqa: E731
            try:
                if action == "backup":
                    report = topics_backup(
                        options["directory"],
                        bootstrap=options["bootstrap_servers"],
                        progress=progress,
                    )
                    self.stdout.write(
                        f"backed up {report.records} records of {report.topics} topics in {report.seconds:.1f}s"
                    )
                else:
                    restored = topics_restore(
                        options["directory"],
                        bootstrap=options["bootstrap_servers"],
                        progress=progress,
                    )
                    self.stdout.write(
                        f"restored and verified {restored.records} records of {restored.topics} topics "
                        f"in {restored.seconds:.1f}s"
                    )
            except BackupError as exc:
                raise CommandError(str(exc)) from None

    def _status(self, as_json: bool, *, tenant: str | None, lag: bool) -> None:
        specs = tenant_topics(tenant) if tenant else catalog_for_all_tenants()
        states = topics_state(specs)
        lag_by_group = consumer_lag() if lag else {}
        if as_json:
            self.stdout.write(
                json.dumps({"topics": [s.__dict__ for s in states], "lag": lag_by_group}, indent=2)
            )
            return
        for state in states:
            if state.state != "ok":
                self.stdout.write(f"{state.state:8} {state.topic} {state.detail}".rstrip())
        ok = sum(1 for s in states if s.state == "ok")
        self.stdout.write(f"{ok}/{len(states)} catalog topics ok")
        for group, info in lag_by_group.items():
            self.stdout.write(f"lag {group}: {info['total']}")
