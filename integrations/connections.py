"""Looking up a tenant's integration, and the error when it is not connected."""

from __future__ import annotations

from typing import Any

from integrations.models import IntegrationConnection
from integrations.providers import provider_spec
from smarteros.errors import NotConnected
from smarteros.infra.egress import url_refusal
from tenants.models import Tenant
from tenants.secrets import secret_decrypt


def connection_require(*, tenant: Tenant, provider: str) -> IntegrationConnection:
    """The tenant's connection to `provider`, or NotConnected naming both."""
    connection = IntegrationConnection.objects.filter(tenant=tenant, provider=provider).first()
    if connection is None or not connection.credentials_ciphertext:
        raise NotConnected(
            f"{provider} is not connected for tenant {tenant.slug}; "
            f"a tenant admin connects it on the console's Integrations page "
            f"(/tenants/{tenant.slug}/integrations/)"
        )
    return connection


def connection_config_check(*, provider: str, config: dict[str, Any]) -> dict[str, Any]:
    """The settings to store for a connection to `provider`; ValueError naming the setting that
    cannot be used (a URL the egress gate refuses, or what the provider's own check refuses: a
    Shopify api_version outside the supported list). Every path that saves a connection (the
    service, the console form, the admin) goes through this."""
    if not isinstance(config, dict):
        raise ValueError("config: must be a JSON object of settings")
    spec = provider_spec(provider)
    checked = dict(config)
    for name in spec.url_settings:
        url = str(checked.get(name) or "").strip()
        # Calls to this URL carry the tenant's credentials and return what it answers: no
        # loopback, private, metadata or platform address in any spelling (checked again at
        # every connection by the egress gate).
        if url and (refusal := url_refusal(url, resolve=True)):
            raise ValueError(f"{name} is refused: {refusal}")
    if spec.check_config is not None:
        checked = spec.check_config(checked)
    return checked


def connection_credentials(connection: IntegrationConnection) -> Any:
    """Decrypt the connection's credentials for the duration of one call."""
    return secret_decrypt(
        slug=connection.tenant.slug,
        purpose=f"integration:{connection.provider}",
        ciphertext=connection.credentials_ciphertext,
    )
