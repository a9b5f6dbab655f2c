"""Provisioning a tenant: idempotent steps, resumable after a failure half-way.

Each step checks what exists and creates only what is missing, then reports itself on
`tenant.provisioning`. A failing step leaves the tenant in `provisioning` with the step named
in `provisioning_error`; running provisioning again finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from smarteros.events.catalog import tenant_every_topic, tenant_topics
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import outbox_emit
from smarteros.events.subscriptions import (
    subscriptions_changed,
    subscriptions_wait,
    tenants_leave,
    tenants_left,
)
from smarteros.events.topics import topics_delete, topics_sync
from tenants.models import ApiKey, Tenant
from tenants.scope import dangerously_unscoped, tenant_scope
from tenants.scopes import TENANT_OWNER_SCOPES
from tenants.secrets import tenant_key_ensure
from tenants.services import api_key_create

log = logging.getLogger(__name__)


@dataclass
class ProvisionReport:
    tenant: Tenant
    steps: list[tuple[str, str]] = field(default_factory=list)
    first_api_key: str | None = None
    failed_step: str = ""
    error: str = ""


class ProvisioningFailed(Exception):
    def __init__(self, report: ProvisionReport) -> None:
        super().__init__(
            f"provisioning {report.tenant.slug} failed at {report.failed_step}: {report.error}"
        )
        self.report = report


def _step_kafka_topics(tenant: Tenant, report: ProvisionReport) -> str:
    # Only this tenant's topics, in one request: the cost does not grow with other tenants.
    changes = topics_sync(tenant_topics(tenant.slug))
    created = sum(1 for c in changes if c.action == "created")
    try:
        subscriptions_changed()  # consumers join the new topics now, not at their next refresh
    except Exception as exc:  # Redis away: consumers re-read the tenants within a minute
        log.warning("provisioning %s: consumers not told: %s", tenant.slug, exc)
    return f"{len(changes)} topics, {created} created"


def _step_vault_key(tenant: Tenant, report: ProvisionReport) -> str:
    return "created" if tenant_key_ensure(slug=tenant.slug) else "exists"


def _step_first_api_key(tenant: Tenant, report: ProvisionReport) -> str:
    with dangerously_unscoped():
        if ApiKey.objects.filter(tenant=tenant).exists():
            return "exists"
        issued = api_key_create(tenant=tenant, name="first key", scopes=TENANT_OWNER_SCOPES)
    report.first_api_key = issued.secret
    return "created"


STEPS: list[tuple[str, Callable[[Tenant, ProvisionReport], str]]] = [
    ("kafka_topics", _step_kafka_topics),
    ("vault_key", _step_vault_key),
    ("first_api_key", _step_first_api_key),
]


def _set_status(tenant: Tenant, status: str, error: str = "") -> None:
    # Committed at once, whatever transaction the caller is in: the console watches it live.
    with dangerously_unscoped():
        Tenant.objects.filter(pk=tenant.pk).update(status=status, provisioning_error=error[:500])
    tenant.status, tenant.provisioning_error = status, error[:500]


def _announce(tenant: Tenant, step: str, outcome: str) -> None:
    with tenant_scope(tenant.pk):
        outbox_emit(
            topic="tenant.provisioning",
            envelope=Envelope(
                type="tenant.provisioning.step",
                source="tenants.provisioning",
                tenant=tenant.slug,
                data={"step": step, "outcome": outcome},
            ),
            key=tenant.slug,
            tenant_id=tenant.pk,
        )


def tenant_provision(
    *, tenant: Tenant, on_step: Callable[[str, str, str], None] | None = None
) -> ProvisionReport:
    """Run every provisioning step for `tenant`; raises ProvisioningFailed naming the step.
    `on_step(step, state, detail)` hears each step start ("running"), end ("done") or fail."""
    notify = on_step or (lambda step, state, detail: None)
    if tenant.status == Tenant.Status.DELETED:
        raise ValueError(f"tenant {tenant.slug} is deleted")
    report = ProvisionReport(tenant=tenant)
    if tenant.status != Tenant.Status.SUSPENDED:
        _set_status(tenant, Tenant.Status.PROVISIONING)
    for name, step in STEPS:
        notify(name, "running", "")
        try:
            outcome = step(tenant, report)
        except Exception as exc:
            report.failed_step, report.error = name, f"{type(exc).__name__}: {exc}"
            _set_status(tenant, Tenant.Status.PROVISIONING, f"{name}: {report.error}")
            _announce(tenant, name, f"failed: {report.error}")
            notify(name, "failed", report.error)
            log.warning("provisioning %s failed at %s: %s", tenant.slug, name, report.error)
            raise ProvisioningFailed(report) from exc
        report.steps.append((name, outcome))
        _announce(tenant, name, outcome)
        notify(name, "done", outcome)
    if tenant.status != Tenant.Status.SUSPENDED:
        _set_status(tenant, Tenant.Status.ACTIVE)
    return report


# How long deprovisioning waits for every consumer to leave the tenants' topics; past it, nothing
# is deleted and the next run tries again.
CONSUMERS_LEAVE_SECONDS = 90.0


def tenants_deprovision_due() -> list[str]:
    """Remove the topics and Vault key of tenants deleted longer ago than the grace period, and
    revoke their API keys; each removal is audited. Returns the slugs done."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from tenants.audit import audit_record
    from tenants.secrets import tenant_vault_remove

    cutoff = timezone.now() - timedelta(days=settings.TENANT_DELETION_GRACE_DAYS)
    with dangerously_unscoped():
        due = list(
            Tenant.objects.filter(
                status=Tenant.Status.DELETED, deleted_at__lte=cutoff, deprovisioned_at__isnull=True
            )
        )
    done = []
    if due:
        # Every consumer leaves these tenants' topics before any is deleted: fetching a topic
        # as it is deleted crashes librdkafka on the local broker (see README).
        behind = subscriptions_wait(
            tenants_leave(t.slug for t in due), timeout=CONSUMERS_LEAVE_SECONDS
        )
        if behind:
            log.warning("deprovisioning waits for consumers still reading: %s", ", ".join(behind))
            return []
    for tenant in due:
        names = topics_delete(spec.name for spec in tenant_every_topic(tenant.slug))
        try:
            tenant_vault_remove(slug=tenant.slug)
        except Exception as exc:  # this tenant waits for the next run; the others go on
            log.warning("deprovisioning %s: Vault: %s", tenant.slug, exc)
            continue
        with dangerously_unscoped():
            ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            Tenant.objects.filter(pk=tenant.pk).update(deprovisioned_at=timezone.now())
            audit_record(
                actor="system:deprovision",
                action="tenant.deprovisioned",
                tenant=tenant,
                target=tenant.slug,
                details={"topics_deleted": names},
            )
        tenants_left([tenant.slug])
        done.append(tenant.slug)
    return done
