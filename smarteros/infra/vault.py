"""Vault / OpenBao through hvac: Transit encryption with per-tenant keys."""

from __future__ import annotations

import hvac
from django.conf import settings


def vault_client(*, timeout: float = 5.0, namespace: str | None = None) -> hvac.Client:
    """A client for VAULT_ADDR with the configured token; `namespace` overrides VAULT_NAMESPACE."""
    return hvac.Client(
        url=settings.VAULT_ADDR,
        token=settings.VAULT_TOKEN,
        namespace=namespace if namespace is not None else (settings.VAULT_NAMESPACE or None),
        timeout=timeout,
    )


def ensure_transit_mount() -> bool:
    """Enable the Transit engine at VAULT_TRANSIT_MOUNT; returns True if it was created."""
    client = vault_client()
    mounts = client.sys.list_mounted_secrets_engines()
    mounts = mounts.get("data", mounts)
    if f"{settings.VAULT_TRANSIT_MOUNT}/" in mounts:
        return False
    client.sys.enable_secrets_engine("transit", path=settings.VAULT_TRANSIT_MOUNT)
    return True


def check(timeout: float) -> str:
    client = vault_client(timeout=timeout)
    status = client.sys.read_health_status(method="GET")
    data = status if isinstance(status, dict) else status.json()
    if data.get("sealed"):
        raise RuntimeError("sealed")
    if not client.is_authenticated():
        raise RuntimeError("token rejected")
    return f"Vault API {data.get('version', '?')}"
