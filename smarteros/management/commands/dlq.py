"""manage.py dlq list | replay --tenant SLUG --topic TOPIC [--limit N]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarteros.events.dead_letters import (
    UnknownDeadLetterTopic,
    dead_letters_list,
    dead_letters_replay,
)


class Command(BaseCommand):
    help = "A tenant's dead letters of one topic: list them, or re-queue them through the outbox."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (
            (
                "list",
                "Every dead letter, oldest first, with its reason and whether it was replayed.",
            ),
            ("replay", "Re-queue the dead letters not replayed yet, keeping their event ids."),
        ):
            command = sub.add_parser(name, help=text)
            command.add_argument("--tenant", required=True, help="The tenant's slug.")
            command.add_argument(
                "--topic", required=True, help="A tenant topic, e.g. n8n.automation.result."
            )
            command.add_argument("--limit", type=int, help="At most this many dead letters.")

    def handle(self, *args: Any, **options: Any) -> None:
        from tenants.models import Tenant
        from tenants.scope import dangerously_unscoped

        slug, topic, limit = options["tenant"], options["topic"], options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        with dangerously_unscoped():
            if not Tenant.objects.filter(slug=slug).exists():
                raise CommandError(f"--tenant: no tenant {slug!r}")
        try:
            if options["action"] == "list":
                letters = dead_letters_list(slug=slug, topic=topic, limit=limit)
                for letter in letters:
                    self.stdout.write(
                        f"{letter.partition}@{letter.offset} {letter.event_id or '-'} "
                        f"{letter.event_type or '-'} [{letter.group or '-'}]"
                        f"{' replayed' if letter.replayed else ''}: {letter.reason}"
                    )
                self.stdout.write(f"{len(letters)} dead letter(s)")
            else:
                result = dead_letters_replay(slug=slug, topic=topic, limit=limit)
                for where in result.skipped:
                    self.stdout.write(f"skipped {where}: not an envelope of {slug}")
                self.stdout.write(
                    f"{len(result.requeued)} event(s) re-queued, {len(result.skipped)} skipped"
                )
        except UnknownDeadLetterTopic as exc:
            raise CommandError(f"--topic: {exc}") from None
