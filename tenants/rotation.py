"""Rotating tenants' Transit keys and rewrapping every stored ciphertext under the new version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from tenants.models import Tenant
from tenants.scope import tenant_scope
from tenants.secrets import secret_rewrap, tenant_key_ensure, tenant_vault, transit_key_name


@dataclass(frozen=True)
class EncryptedField:
    """A model field holding Vault ciphertext, and the purpose its context was bound to."""

    model: Callable[[], Any]
    field: str
    purpose: Callable[[Any], str]


def encrypted_fields() -> list[EncryptedField]:
    from integrations.models import IntegrationConnection
    from mcp_tools.models import UpstreamServer

    return [
        EncryptedField(
            lambda: IntegrationConnection,
            "credentials_ciphertext",
            lambda row: f"integration:{row.provider}",
        ),
        EncryptedField(
            lambda: UpstreamServer, "credentials_ciphertext", lambda row: f"upstream-mcp:{row.name}"
        ),
    ]


@dataclass
class RotationReport:
    tenant: str
    key_version: int
    rewrapped: int


def tenant_keys_rotate(*, tenant: Tenant) -> RotationReport:
    """Rotate the tenant's key, then rewrap each of its ciphertexts (the old version stays valid
    for decryption until every ciphertext is rewrapped, so a run cut short is simply run again)."""
    tenant_key_ensure(slug=tenant.slug)
    transit = tenant_vault(tenant.slug).secrets.transit
    mount = settings.VAULT_TRANSIT_MOUNT
    transit.rotate_key(name=transit_key_name(tenant.slug), mount_point=mount)
    version = int(
        transit.read_key(name=transit_key_name(tenant.slug), mount_point=mount)["data"][
            "latest_version"
        ]
    )
    rewrapped = 0
    with tenant_scope(tenant.pk):
        for spec in encrypted_fields():
            model = spec.model()
            for row in model.objects.filter(tenant=tenant).exclude(**{spec.field: ""}):
                current = getattr(row, spec.field)
                fresh = secret_rewrap(
                    slug=tenant.slug, purpose=spec.purpose(row), ciphertext=current
                )
                if fresh != current:
                    model.objects.filter(pk=row.pk).update(**{spec.field: fresh})
                    rewrapped += 1
    return RotationReport(tenant=tenant.slug, key_version=version, rewrapped=rewrapped)
