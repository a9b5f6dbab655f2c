"""Connecting a tenant to a provider: settings stored as they are, secrets only as ciphertext."""

from __future__ import annotations

from typing import Any

from integrations.models import IntegrationConnection
from tenants.models import Tenant
from tenants.scope import tenant_scope
from tenants.secrets import secret_encrypt

REQUIRED = {
    "shopify": ({"shop_domain"}, {"access_token"}),
    "whatsapp": ({"phone_number_id"}, {"access_token"}),
    "n8n": ({"base_url"}, {"api_key"}),
}
EXTERNAL_ID = {"shopify": "shop_domain", "whatsapp": "phone_number_id", "n8n": "base_url"}


def integration_connect(
    *, tenant: Tenant, provider: str, config: dict[str, Any], credentials: dict[str, str]
) -> IntegrationConnection:
    """Create or replace the tenant's connection to `provider`; credentials go through Vault."""
    if provider not in REQUIRED:
        raise ValueError(f"provider must be one of {', '.join(REQUIRED)}")
    config_keys, secret_keys = REQUIRED[provider]
    missing = sorted((config_keys - set(config)) | (secret_keys - set(credentials)))
    if missing:
        raise ValueError(f"{provider} needs: {', '.join(missing)}")
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
                "external_id": str(config.get(EXTERNAL_ID[provider], "")),
            },
        )
    return connection
