"""Writing the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from tenants.models import AuditEvent, Tenant

# Fields never copied into the audit log, whatever the model.
SECRET_FIELDS = {"key_hash", "credentials_ciphertext", "password", "credentials"}


# Refused attempts are audited, but an attacker must not be able to grow the table with them:
# a repeat of the same refusal (person, action, target, reason) within the window adds to the
# first row's `repeats`, and one person gets at most REFUSALS_PER_ACTOR rows per window; past
# that, further refusals add to their latest row's `suppressed`.
REFUSAL_WINDOW = timedelta(seconds=60)
REFUSALS_PER_ACTOR = 20


def audit_refusal(
    *, actor: str, action: str, tenant: Tenant | None, reason: str, target: str = ""
) -> AuditEvent:
    """Record a refused attempt, throttled (see REFUSAL_WINDOW). Written as the platform in a
    transaction of its own, so it stays when the refused change is rolled back."""
    from tenants.scope import dangerously_unscoped

    # What a refused client sent may hold anything, NUL included, which PostgreSQL text refuses.
    reason, target = _text(reason)[:500], _text(target)[:300]
    refused = f"{_text(action)}.refused"
    with dangerously_unscoped():
        recent = AuditEvent.objects.filter(
            actor=actor,
            action__endswith=".refused",
            created_at__gte=timezone.now() - REFUSAL_WINDOW,
        )
        same = (
            recent.select_for_update()
            .filter(action=refused, target=target, tenant=tenant, details__reason=reason)
            .order_by("-created_at", "-pk")
            .first()
        )
        if same is not None:
            return _count_on(same, "repeats")
        if recent.count() >= REFUSALS_PER_ACTOR:
            latest = recent.select_for_update().order_by("-created_at", "-pk").first()
            assert latest is not None
            return _count_on(latest, "suppressed")
        return audit_record(
            actor=actor, action=refused, tenant=tenant, target=target, details={"reason": reason}
        )


def _count_on(event: AuditEvent, counter: str) -> AuditEvent:
    details = dict(event.details or {})
    details[counter] = int(details.get(counter, 0)) + 1
    AuditEvent.objects.filter(pk=event.pk).update(details=details)
    event.details = details
    return event


def _text(value: str) -> str:
    """Text PostgreSQL stores: a NUL (which it refuses) shown as U+FFFD."""
    return value.replace("\x00", "\ufffd")


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
        tenant=tenant, actor=actor, action=_text(action), target=_text(target)[:300], details=clean
    )
