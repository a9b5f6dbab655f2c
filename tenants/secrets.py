"""Credentials only as Vault Transit ciphertext, under a per-tenant key.

Each tenant has a derived Transit key `tenant-{slug}`; every encryption passes a context bound to
the tenant and the credential's purpose, so a ciphertext copied to another tenant or another
credential does not decrypt. Plaintext lives only in the memory of the call that uses it.

Where the server supports namespaces (OpenBao, Vault Enterprise) each tenant's key lives in a
namespace of its own, `smarteros-{slug}` under VAULT_NAMESPACE, with its own Transit mount, so a
tenant's policies and audit trail can be handed out separately (VAULT_TENANT_NAMESPACES). The
namespace (or none) is decided once, at provisioning, and recorded on the tenant row; every later
lookup uses the record, so a server that answers differently later cannot flip a tenant's mode.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import hvac.exceptions
import requests
from django.conf import settings

from smarteros.errors import DependencyUnavailable
from smarteros.infra.vault import vault_client


def transit_key_name(slug: str) -> str:
    return f"tenant-{slug}"


def namespaces_supported() -> bool:
    """Whether this Vault server gives tenants namespaces (asked at provisioning only). An
    unreachable server or a permission error is an error, never a silent "no"."""
    if settings.VAULT_TENANT_NAMESPACES == "off":
        return False
    try:
        vault_client(timeout=5).sys.list_namespaces()
        supported = True
    except hvac.exceptions.InvalidPath:
        supported = True  # supported, none created yet
    except requests.exceptions.RequestException as exc:
        raise DependencyUnavailable(
            f"Vault is unavailable (namespaces): {type(exc).__name__}"
        ) from None
    except hvac.exceptions.Forbidden:
        raise DependencyUnavailable(
            "Vault refused to list namespaces (permission denied): give the platform token "
            "list on sys/namespaces, or set VAULT_TENANT_NAMESPACES=off"
        ) from None
    except hvac.exceptions.VaultError:
        supported = False
    if settings.VAULT_TENANT_NAMESPACES == "on" and not supported:
        raise DependencyUnavailable(
            "Vault does not support namespaces but VAULT_TENANT_NAMESPACES=on"
        )
    return supported


# slug -> recorded namespace ("" for none). A recorded namespace never changes, so it is kept.
_recorded: dict[str, str] = {}


def tenant_namespace(slug: str) -> str | None:
    """The tenant's Vault namespace as recorded on its row at provisioning (None: no namespace).
    A tenant not provisioned yet gets its mode decided and recorded now."""
    if slug not in _recorded:
        from tenants.models import Tenant
        from tenants.scope import dangerously_unscoped

        with dangerously_unscoped():
            recorded = (
                Tenant.objects.filter(slug=slug).values_list("vault_namespace", flat=True).first()
            )
        if recorded is None:
            recorded = _namespace_record(slug)
        _recorded[slug] = recorded
    return _recorded[slug] or None


def _namespace_record(slug: str) -> str:
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    namespace = (
        "/".join(p for p in (settings.VAULT_NAMESPACE, f"smarteros-{slug}") if p)
        if namespaces_supported()
        else ""
    )
    with dangerously_unscoped():
        # A concurrent first use may have recorded it already: the first record wins.
        Tenant.objects.filter(slug=slug, vault_namespace__isnull=True).update(
            vault_namespace=namespace
        )
        stored = Tenant.objects.filter(slug=slug).values_list("vault_namespace", flat=True).first()
    return namespace if stored is None else stored


def tenant_vault(slug: str, *, timeout: float = 5.0) -> hvac.Client:
    """A client in the tenant's namespace (or the configured one where there are none)."""
    namespace = tenant_namespace(slug)
    return (
        vault_client(timeout=timeout, namespace=namespace)
        if namespace
        else vault_client(timeout=timeout)
    )


def _namespace_ensure(slug: str) -> None:
    namespace = tenant_namespace(slug)
    if namespace is None:
        return
    parent_path, _, own = namespace.rpartition("/")
    parent = vault_client(namespace=parent_path or None)
    try:
        parent.sys.create_namespace(path=own)
    except hvac.exceptions.InvalidRequest as exc:
        if "already exists" not in str(exc):
            raise
    inside = tenant_vault(slug)
    mounts = inside.sys.list_mounted_secrets_engines()
    if f"{settings.VAULT_TRANSIT_MOUNT}/" not in mounts.get("data", mounts):
        inside.sys.enable_secrets_engine("transit", path=settings.VAULT_TRANSIT_MOUNT)


def tenant_vault_remove(*, slug: str) -> None:
    """Delete the tenant's key (and its namespace, where it has one)."""
    transit = tenant_vault(slug).secrets.transit
    mount = settings.VAULT_TRANSIT_MOUNT
    try:
        transit.update_key_configuration(
            name=transit_key_name(slug), deletion_allowed=True, mount_point=mount
        )
        transit.delete_key(name=transit_key_name(slug), mount_point=mount)
    except hvac.exceptions.InvalidPath:
        pass  # never created
    namespace = tenant_namespace(slug)
    if namespace is not None:
        tenant_vault(slug).sys.disable_secrets_engine(path=settings.VAULT_TRANSIT_MOUNT)
        parent_path, _, own = namespace.rpartition("/")
        vault_client(namespace=parent_path or None).sys.delete_namespace(path=own)


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
    mount = settings.VAULT_TRANSIT_MOUNT

    def run() -> bool:
        _namespace_ensure(slug)
        client = tenant_vault(slug)
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

    def run() -> str:
        client = tenant_vault(slug)
        try:
            response = client.secrets.transit.encrypt_data(
                name=transit_key_name(slug),
                plaintext=base64.b64encode(plaintext.encode()).decode(),
                context=_context(slug, purpose),
                mount_point=settings.VAULT_TRANSIT_MOUNT,
            )
        except (
            hvac.exceptions.InvalidRequest,
            hvac.exceptions.InvalidPath,
            hvac.exceptions.Forbidden,
        ):
            # The tenant's key (or namespace) does not exist yet (never provisioned): create it once.
            tenant_key_ensure(slug=slug)
            client = tenant_vault(slug)
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

    def run() -> Any:
        client = tenant_vault(slug)
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

    def run() -> str:
        client = tenant_vault(slug)
        response = client.secrets.transit.rewrap_data(
            name=transit_key_name(slug),
            ciphertext=ciphertext,
            context=_context(slug, purpose),
            mount_point=settings.VAULT_TRANSIT_MOUNT,
        )
        return str(response["data"]["ciphertext"])

    return str(_vault_call("rewrap", run))
