"""Connecting a tenant to a provider: settings stored as they are, secrets only as ciphertext."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from integrations.connections import connection_config_check
from integrations.models import IntegrationConnection
from integrations.providers import provider_spec
from tenants.models import Tenant
from tenants.scope import tenant_read_scope, tenant_scope
from tenants.secrets import secret_encrypt


def external_id_of(provider: str, config: dict[str, Any]) -> str:
    """The connection's provider-side id (shop domain, phone number id), normalised as the
    provider sends it in webhooks; ValueError naming the setting if it cannot be one."""
    return provider_spec(provider).external_id_of(config)


def integration_credentials_edit(
    *, tenant: Tenant, provider: str, replace: dict[str, str], clear: Iterable[str] = ()
) -> dict[str, str]:
    """The credentials an edit of the tenant's `provider` connection saves: the stored ones
    kept, each replaced when given anew, removed when named in `clear` (a secret left blank is
    kept, never erased by accident)."""
    with tenant_read_scope(tenant.pk):
        connection = IntegrationConnection.objects.filter(tenant=tenant, provider=provider).first()
        stored = _stored_credentials(connection) if connection is not None else {}
    cleared = set(clear)
    return {**{k: v for k, v in stored.items() if k not in cleared}, **replace}


def integration_connect(
    *, tenant: Tenant, provider: str, config: dict[str, Any], credentials: dict[str, str]
) -> IntegrationConnection:
    """Create or replace the tenant's connection to `provider`; credentials go through Vault.
    Its external id (the shop domain, the phone number id) is what webhooks are matched with."""
    spec = provider_spec(provider)
    missing = sorted(
        (set(spec.required_settings) - set(config))
        | (set(spec.required_secrets) - set(credentials))
    )
    if missing:
        raise ValueError(f"{provider} needs: {', '.join(missing)}")
    config = connection_config_check(provider=provider, config=config)
    external_id = spec.external_id_of(config)
    if spec.check_credentials is not None:
        spec.check_credentials(credentials)
    ciphertext = secret_encrypt(
        slug=tenant.slug, purpose=f"integration:{provider}", value=credentials
    )
    with tenant_scope(tenant.pk):
        connection, _ = IntegrationConnection.objects.update_or_create(
            tenant=tenant,
            provider=provider,
            defaults={
                "config": config,
                "credentials_ciphertext": ciphertext,
                "external_id": external_id,
            },
        )
    return connection


def integration_disconnect(*, tenant: Tenant, provider: str) -> bool:
    """Remove the tenant's connection to `provider`, its credentials' ciphertext with it: its
    webhooks are refused and its operations answer `not_connected` from then on. False if
    there was none."""
    with tenant_scope(tenant.pk):
        deleted, _ = IntegrationConnection.objects.filter(tenant=tenant, provider=provider).delete()
    return bool(deleted)


def integration_secrets_set(connection: IntegrationConnection) -> dict[str, bool]:
    """Which of the connection's secrets hold a value (decrypted for this, never shown)."""
    return {name: bool(value) for name, value in _stored_credentials(connection).items()}


def _stored_credentials(connection: IntegrationConnection) -> dict[str, str]:
    """The connection's secrets, decrypted; empty if none are stored."""
    from integrations.connections import connection_credentials

    if not connection.credentials_ciphertext:
        return {}
    return dict(connection_credentials(connection))
