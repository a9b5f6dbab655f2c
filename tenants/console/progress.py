"""Provisioning as a worker runs it for the console: each step announced to the tenant's
channel-layer group (the page's websocket relays it), the first API key kept for one showing."""

from __future__ import annotations

from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from smarteros.infra.redis import get_redis
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
from tenants.secrets import secret_decrypt, secret_encrypt

FIRST_KEY_SECONDS = 900
FIRST_KEY_PURPOSE = "console:first-api-key"


def progress_group(tenant_id: int) -> str:
    """The channel-layer group that carries a tenant's provisioning progress."""
    return f"tenant-provisioning-{int(tenant_id)}"


def progress_publish(tenant_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            progress_group(tenant_id), {"type": "progress", "event": event}
        )


def _first_key_name(tenant_id: int) -> str:
    return f"smarteros:console:first-key:{int(tenant_id)}"


def first_key_keep(*, tenant: Tenant, secret: str) -> None:
    # Kept only as Vault ciphertext, for a short while, until the page takes it once.
    ciphertext = secret_encrypt(slug=tenant.slug, purpose=FIRST_KEY_PURPOSE, value=secret)
    get_redis().set(_first_key_name(tenant.pk), ciphertext, ex=FIRST_KEY_SECONDS)


def first_key_waiting(*, tenant: Tenant) -> bool:
    """Whether a first API key waits to be shown (the page offers it, also after a reconnect);
    False when Redis does not answer, as the page must still open."""
    try:
        return bool(get_redis().exists(_first_key_name(tenant.pk)))
    except redis.RedisError:
        return False


def first_key_take(*, tenant: Tenant) -> str | None:
    """The first API key of a freshly provisioned tenant, once; None afterwards."""
    ciphertext = get_redis().getdel(_first_key_name(tenant.pk))
    if not ciphertext:
        return None
    return str(
        secret_decrypt(slug=tenant.slug, purpose=FIRST_KEY_PURPOSE, ciphertext=str(ciphertext))
    )


def console_provision(*, tenant_id: int, actor: str) -> None:
    """Provision the tenant, publishing each step as it starts, ends or fails."""
    from tenants.audit import audit_record
    from tenants.provisioning import ProvisioningFailed, tenant_provision

    with dangerously_unscoped():
        tenant = Tenant.objects.get(pk=tenant_id)

    def on_step(step: str, state: str, detail: str) -> None:
        progress_publish(tenant_id, {"step": step, "state": state, "detail": detail})

    try:
        report = tenant_provision(tenant=tenant, on_step=on_step)
    except ProvisioningFailed as exc:
        progress_publish(
            tenant_id, {"finished": "failed", "detail": str(exc), "status": tenant.status}
        )
        return
    if report.first_api_key:
        first_key_keep(tenant=tenant, secret=report.first_api_key)
    with dangerously_unscoped():
        audit_record(
            actor=actor,
            action="tenant.provisioned",
            tenant=tenant,
            target=tenant.slug,
            details={"steps": [name for name, _ in report.steps]},
        )
    progress_publish(
        tenant_id,
        {"finished": "done", "first_key": bool(report.first_api_key), "status": tenant.status},
    )
