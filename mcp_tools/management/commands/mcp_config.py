"""Print a claude_desktop_config.json entry that runs mcp_serve for one tenant."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant
from tenants.scope import dangerously_unscoped


def claude_desktop_entry(*, slug: str, api_key: str, name: str | None = None) -> dict[str, Any]:
    """The claude_desktop_config.json entry that runs mcp_serve for a tenant with `api_key`
    (printed by this command, shown by the console after provisioning)."""
    root = Path(settings.BASE_DIR)
    return {
        "mcpServers": {
            name or f"smarteros-{slug}": {
                "command": str(Path(sys.executable)),
                "args": [str(root / "manage.py"), "mcp_serve"],
                "env": {
                    "SMARTEROS_API_KEY": api_key,
                    "DJANGO_SETTINGS_MODULE": "smarteros.settings",
                },
            }
        }
    }


class Command(BaseCommand):
    help = "Print a ready claude_desktop_config.json entry for a tenant (issues a key unless --api-key)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--api-key", help="Use this key instead of issuing a new one.")
        parser.add_argument(
            "--name", default=None, help="Server name in Claude (default smarteros-SLUG)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["tenant"]
        with dangerously_unscoped():
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                raise CommandError(f"no tenant with slug {slug!r}")
            key = options["api_key"] or self._key_for(tenant)
        entry = claude_desktop_entry(slug=slug, api_key=key, name=options["name"])
        self.stdout.write(json.dumps(entry, indent=2))

    def _key_for(self, tenant: Tenant) -> str:
        from tenants.demo import DEMO_TENANTS, demo_api_key
        from tenants.services import api_key_create

        if settings.SMARTEROS_ENV != "production" and tenant.slug in {t[0] for t in DEMO_TENANTS}:
            return demo_api_key(tenant.slug)
        issued = api_key_create(tenant=tenant, name="claude-desktop")
        self.stderr.write(f"Issued a new API key {issued.api_key.prefix}… named claude-desktop.")
        return issued.secret
