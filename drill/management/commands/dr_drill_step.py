"""manage.py dr_drill_step seed|check (run by dr_drill against its own services)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from drill.steps import drill_check, drill_seed
from smarteros.dr.common import DrError


class Command(BaseCommand):
    help = (
        "A step of dr_drill, run in the environment of one of its stacks: `seed` (tenants, "
        "telemetry, messages) or `check` (a restored tenant works)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step", choices=["seed", "check"])
        parser.add_argument("--secrets-file", type=Path, required=True)
        parser.add_argument("--tenants", type=int, default=3)
        parser.add_argument("--messages", type=int, default=0)
        parser.add_argument(
            "--wait-for", type=Path, help="check: start now, check once this file exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        say = self.stdout.write
        try:
            if options["step"] == "seed":
                drill_seed(
                    tenants=options["tenants"],
                    messages=options["messages"],
                    secrets_file=options["secrets_file"],
                    progress=say,
                )
            else:
                drill_check(
                    secrets_file=options["secrets_file"],
                    wait_for=options["wait_for"],
                    progress=say,
                )
        except DrError as exc:
            raise CommandError(str(exc)) from None
