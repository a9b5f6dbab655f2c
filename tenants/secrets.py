"""Credentials only as Vault Transit ciphertext, under a per-tenant key.

Each tenant has a derived Transit key `tenant-{slug}`; every encryption passes a context bound to
the tenant and the credential's purpose, so a ciphertext copied to another tenant or another
credential does not decrypt. Plaintext lives only in the memory of the call that uses it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import hvac.exceptions
import requests
from django.conf import settings

from mcp_tools.errors import DependencyUnavailable
from smarteros.infra.vault import vault_client


def transit_key_name(slug: str) -> str:
    return f"tenant-{slug}"


def _context(slug: str, purpose: str) -> str:
    return base64.b64encode(f"smarteros:{slug}:{purpose}".encode()).decode()


def _vault_call(action: str, fn: Any) -> Any:
    try:
        return fn()
    except (requests.exceptions.RequestException, hvac.exceptions.VaultDown) as exc:
        raise DependencyUnavailable(
            f"Vault is unavailable ({action}): {type(exc).__name__}"
        ) from None


def tenant_key_ensure(*, slug: str) -> bool:
    """Create the tenant's Transit key if missing; returns True if it was created."""
    client = vault_client()
    mount = settings.VAULT_TRANSIT_MOUNT

    def run() -> bool:
        try:
            client.secrets.transit.read_key(name=transit_key_name(slug), mount_point=mount)
            return False
        except hvac.exceptions.InvalidPath:
            client.secrets.transit.create_key(
                name=transit_key_name(slug),
                derived=True,
                key_type="aes256-gcm96",
                mount_point=mount,
            )
            return True

    return bool(_vault_call("create key", run))


def secret_encrypt(*, slug: str, purpose: str, value: dict[str, Any] | str) -> str:
    """Encrypt a credential (string or JSON object) for `slug`; returns `vault:v1:...` ciphertext."""
    plaintext = json.dumps(value) if not isinstance(value, str) else json.dumps({"value": value})
    client = vault_client()

    def run() -> str:
        try:
            response = client.secrets.transit.encrypt_data(
                name=transit_key_name(slug),
                plaintext=base64.b64encode(plaintext.encode()).decode(),
                context=_context(slug, purpose),
                mount_point=settings.VAULT_TRANSIT_MOUNT,
            )
        except hvac.exceptions.InvalidRequest:
            # The tenant's key does not exist yet (never provisioned): create it once.
            tenant_key_ensure(slug=slug)
            response = client.secrets.transit.encrypt_data(
                name=transit_key_name(slug),
                plaintext=base64.b64encode(plaintext.encode()).decode(),
                context=_context(slug, purpose),
                mount_point=settings.VAULT_TRANSIT_MOUNT,
            )
        return str(response["data"]["ciphertext"])

    return str(_vault_call("encrypt", run))


def secret_decrypt(*, slug: str, purpose: str, ciphertext: str) -> Any:
    """The credential stored as `ciphertext`, decrypted with the tenant's key and context."""
    client = vault_client()

    def run() -> Any:
        response = client.secrets.transit.decrypt_data(
            name=transit_key_name(slug),
            ciphertext=ciphertext,
            context=_context(slug, purpose),
            mount_point=settings.VAULT_TRANSIT_MOUNT,
        )
        data = json.loads(base64.b64decode(response["data"]["plaintext"]))
        return data["value"] if isinstance(data, dict) and set(data) == {"value"} else data

    return _vault_call("decrypt", run)


def secret_rewrap(*, slug: str, purpose: str, ciphertext: str) -> str:
    """Re-encrypt under the key's latest version without exposing the plaintext."""
    client = vault_client()

    def run() -> str:
        response = client.secrets.transit.rewrap_data(
            name=transit_key_name(slug),
            ciphertext=ciphertext,
            context=_context(slug, purpose),
            mount_point=settings.VAULT_TRANSIT_MOUNT,
        )
        return str(response["data"]["ciphertext"])

    return str(_vault_call("rewrap", run))
