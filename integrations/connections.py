"""Looking up a tenant's integration, and the error when it is not connected."""

from __future__ import annotations

from typing import Any

from integrations.models import IntegrationConnection
from mcp_tools.errors import NotConnected
from tenants.models import Tenant
from tenants.secrets import secret_decrypt


def connection_require(*, tenant: Tenant, provider: str) -> IntegrationConnection:
    """The tenant's connection to `provider`, or NotConnected naming both."""
    connection = IntegrationConnection.objects.filter(tenant=tenant, provider=provider).first()
    if connection is None or not connection.credentials_ciphertext:
        raise NotConnected(
            f"{provider} is not connected for tenant {tenant.slug}; "
            f"an operator connects it in the admin (Integration connections)"
        )
    return connection


def connection_credentials(connection: IntegrationConnection) -> Any:
    """Decrypt the connection's credentials for the duration of one call."""
    return secret_decrypt(
        slug=connection.tenant.slug,
        purpose=f"integration:{connection.provider}",
        ciphertext=connection.credentials_ciphertext,
    )
