from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mcp_tools.snapshot import SNAPSHOT_PATH, current_tools, render, snapshot_write


class Command(BaseCommand):
    help = (
        "Write (or --check) the snapshot of every tool's schema in mcp_tools/snapshots/tools.json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the snapshot is stale.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            if not SNAPSHOT_PATH.exists() or SNAPSHOT_PATH.read_text() != render(current_tools()):
                raise CommandError(
                    "tool schemas changed; run `manage.py tools_snapshot` and commit it"
                )
            self.stdout.write("snapshot up to date")
            return
        self.stdout.write(f"wrote {snapshot_write()}")
