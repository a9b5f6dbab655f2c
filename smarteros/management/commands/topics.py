"""manage.py topics sync | status | backup DIR | restore DIR | generation-backup DIR |
generation-restore DIR"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.events.backup import BackupError, topics_backup, topics_restore
from smarteros.events.backup_generations import BackupRefused, generations_backup
from smarteros.events.catalog import tenant_topics
from smarteros.events.generations_restore import generations_restore
from smarteros.events.outbox import outbox_republish
from smarteros.events.status import catalog_for_all_tenants, consumer_lag, topics_state
from smarteros.events.topics import topics_sync

# Exit status of a generation-backup that wrote nothing because the broker is not the one the
# newest generation describes (scripts/devstack.py tells it from a failure).
REFUSED = 3
# Events sent shortly before a backup began may have missed it (clocks, the relay's batch).
REPUBLISH_MARGIN_SECONDS = 5


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
            (
                "generation-backup",
                "Add a generation to DIR: what changed since its newest one (the local stack's).",
            ),
            (
                "generation-restore",
                "Replay DIR's newest good generation (resumes a restore that stopped), then "
                "republish the outbox's events sent after it was taken.",
            ),
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
            if action.startswith("generation-"):
                self._generation(action, options["directory"], options["bootstrap_servers"])
                return
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

    def _generation(self, action: str, directory: Path, bootstrap: str | None) -> None:
        progress = lambda line: self.stdout.write(f"  {line}")  # noqa: E731
        try:
            if action == "generation-backup":
                report = generations_backup(directory, bootstrap=bootstrap, progress=progress)
                self.stdout.write(
                    f"backed up {report.records} new records of {report.topics} topics "
                    f"in {report.seconds:.1f}s"
                )
                return
            restored, taken = generations_restore(directory, bootstrap=bootstrap, progress=progress)
        except BackupRefused as exc:
            raise CommandError(str(exc), returncode=REFUSED) from None
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"restored and verified {restored.records} records of {restored.topics} topics "
            f"in {restored.seconds:.1f}s"
        )
        if taken is not None:
            # The broker lost what it acknowledged after the backup: the outbox still has it.
            since = datetime.fromtimestamp(taken - REPUBLISH_MARGIN_SECONDS, tz=UTC)
            self.stdout.write(
                f"republishing {outbox_republish(since=since)} outbox events sent since {since:%c}"
            )

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
