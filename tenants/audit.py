"""Writing the audit log."""

from __future__ import annotations

from typing import Any

from tenants.models import AuditEvent, Tenant

# Fields never copied into the audit log, whatever the model.
SECRET_FIELDS = {"key_hash", "credentials_ciphertext", "password", "credentials"}


def audit_refusal(
    *, actor: str, action: str, tenant: Tenant | None, reason: str, target: str = ""
) -> AuditEvent:
    """Record a refused attempt. Written as the platform in a transaction of its own, so it
    stays when the refused change is rolled back."""
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        return audit_record(
            actor=actor,
            action=f"{action}.refused",
            tenant=tenant,
            target=target,
            details={"reason": reason[:500]},
        )


def audit_record(
    *,
    actor: str,
    action: str,
    tenant: Tenant | None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one change; call it inside the transaction that makes the change."""
    clean = {k: v for k, v in (details or {}).items() if k not in SECRET_FIELDS}
    return AuditEvent.objects.create(
        tenant=tenant, actor=actor, action=action, target=target[:300], details=clean
    )
