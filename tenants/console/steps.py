"""Provisioning steps as the console shows them: the state of each, derived from the tenant row
(its status and the step named in `provisioning_error`), so a page opened at any time is right."""

from __future__ import annotations

from dataclasses import dataclass

from tenants.models import Tenant
from tenants.provisioning import STEPS

LABELS = {
    "kafka_topics": "Kafka topics",
    "vault_key": "Vault key",
    "first_api_key": "First API key",
}


@dataclass(frozen=True)
class StepState:
    name: str
    label: str
    state: str  # pending, running, done, failed
    detail: str = ""


def step_states(tenant: Tenant) -> list[StepState]:
    """Each provisioning step with its state as far as the tenant row tells."""
    names = [name for name, _ in STEPS]
    failed, _, error = (tenant.provisioning_error or "").partition(": ")
    states = []
    for index, name in enumerate(names):
        if tenant.status in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED) or (
            tenant.status == Tenant.Status.DELETED and tenant.vault_namespace is not None
        ):
            state, detail = "done", ""
        elif failed in names:
            position = names.index(failed)
            state = "done" if index < position else "failed" if index == position else "pending"
            detail = error if index == position else ""
        elif tenant.status == Tenant.Status.PROVISIONING:
            state, detail = "running" if index == 0 else "pending", ""
        else:
            state, detail = "pending", ""
        states.append(StepState(name, LABELS.get(name, name), state, detail))
    return states
