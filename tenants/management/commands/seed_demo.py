import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.demo import demo_seed


class Command(BaseCommand):
    help = "Create (or repair) the demo operator and tenants acme, globex, initech with API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the demo data as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SMARTEROS_ENV == "production":
            raise CommandError("seed_demo refuses to run with SMARTEROS_ENV=production.")
        data = demo_seed()
        if options["json"]:
            payload = {
                "operator": {
                    "username": data.operator_username,
                    "password": data.operator_password,
                },
                "tenants": [
                    {"slug": slug, "api_key": key} for slug, key in sorted(data.api_keys.items())
                ],
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"Demo operator: {data.operator_username} / {data.operator_password}; "
            f"tenants: {', '.join(sorted(data.api_keys))} (keys: seed_demo --json)"
        )
