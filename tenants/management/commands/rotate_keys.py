from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Tenant
from tenants.rotation import tenant_keys_rotate
from tenants.scope import dangerously_unscoped


class Command(BaseCommand):
    help = "Rotate tenants' Vault Transit keys and rewrap every stored ciphertext."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", action="append", help="Only this tenant (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        with dangerously_unscoped():
            tenants = list(Tenant.objects.exclude(status=Tenant.Status.DELETED))
        if options["tenant"]:
            tenants = [t for t in tenants if t.slug in options["tenant"]]
            missing = set(options["tenant"]) - {t.slug for t in tenants}
            if missing:
                raise CommandError(f"no such tenant(s): {', '.join(sorted(missing))}")
        total = 0
        for tenant in tenants:
            report = tenant_keys_rotate(tenant=tenant)
            total += report.rewrapped
            self.stdout.write(
                f"{report.tenant}: key version {report.key_version}, {report.rewrapped} ciphertexts rewrapped"
            )
        self.stdout.write(f"done: {len(tenants)} tenants, {total} ciphertexts rewrapped")
