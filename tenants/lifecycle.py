"""A tenant's lifecycle as a state machine: one table of the allowed transitions and who may make
each, read by every surface that changes a tenant's status (console, admin, operations).

Suspending and resuming are platform decisions; so is cancelling the deletion of a tenant that
was suspended when its deletion was requested (else a tenant admin could lift a suspension by
requesting deletion and cancelling it). A deletion request records the status it interrupts;
cancelling restores exactly that status. A request on a tenant whose deletion is already pending
is refused. A refused transition changes nothing. Provisioning (pending -> provisioning ->
active) is `tenants.provisioning`; it never changes a suspended or deleted tenant's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.utils import timezone

from tenants.audit import audit_record
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped


class Action(StrEnum):
    SUSPEND = "suspend"
    RESUME = "resume"
    REQUEST_DELETION = "delete"
    CANCEL_DELETION = "cancel_delete"


class Actor(StrEnum):
    """Who asks: a tenant admin (of this tenant) or a platform admin."""

    TENANT_ADMIN = "tenant_admin"
    PLATFORM = "platform"


S = Tenant.Status
ANYONE = frozenset({Actor.TENANT_ADMIN, Actor.PLATFORM})
PLATFORM_ONLY = frozenset({Actor.PLATFORM})
# Past its grace period a deleted tenant's resources are gone: nothing moves it any more.
DEPROVISIONED = "deprovisioned"


@dataclass(frozen=True)
class State:
    """Where a tenant is: its status, and for a deletion pending the status it interrupted."""

    status: str
    before: str = ""

    def __str__(self) -> str:
        return f"{self.status} (was {self.before})" if self.before else self.status


@dataclass(frozen=True)
class Transition:
    action: Action
    source: State
    target: str
    who: frozenset[Actor]
    audit_action: str


def _deletion_rows() -> list[Transition]:
    rows = []
    for status in (S.PENDING, S.PROVISIONING, S.ACTIVE, S.SUSPENDED):
        rows.append(
            Transition(
                Action.REQUEST_DELETION, State(status), S.DELETED, ANYONE, "tenant.delete_requested"
            )
        )
        rows.append(
            Transition(
                Action.CANCEL_DELETION,
                State(S.DELETED, status),
                status,
                # Cancelling must not be a way out of a suspension.
                PLATFORM_ONLY if status == S.SUSPENDED else ANYONE,
                "tenant.delete_cancelled",
            )
        )
    return rows


TRANSITIONS: tuple[Transition, ...] = (
    Transition(Action.SUSPEND, State(S.ACTIVE), S.SUSPENDED, PLATFORM_ONLY, "tenant.suspend"),
    Transition(Action.RESUME, State(S.SUSPENDED), S.ACTIVE, PLATFORM_ONLY, "tenant.resume"),
    *_deletion_rows(),
)

# Every state a tenant can be in, for the tests that walk the whole table and for the docs.
STATES: tuple[State, ...] = (
    *(State(s) for s in (S.PENDING, S.PROVISIONING, S.ACTIVE, S.SUSPENDED)),
    *(State(S.DELETED, s) for s in (S.PENDING, S.PROVISIONING, S.ACTIVE, S.SUSPENDED)),
    State(DEPROVISIONED),
)


class LifecycleRefused(Exception):
    """The change is not allowed: `forbidden` when the person may not make it in this state
    (403), otherwise it does not apply to the tenant's current state (409)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def lifecycle_state(tenant: Tenant) -> State:
    """The tenant's state as the table names it."""
    if tenant.deprovisioned_at is not None:
        return State(DEPROVISIONED)
    if tenant.status == S.DELETED:
        # A row deleted before the status was stored: only the platform may bring it back, and
        # it comes back suspended (the safe reading of an unknown past).
        return State(S.DELETED, tenant.status_before_deletion or S.SUSPENDED)
    return State(tenant.status)


def transition_find(action: str, state: State) -> Transition | None:
    """The table's row for `action` from `state`, or None if the action does not apply."""
    for row in TRANSITIONS:
        if row.action == action and row.source == state:
            return row
    return None


def lifecycle_check(*, tenant: Tenant, action: str, actor: Actor) -> Transition:
    """The transition `actor` may make on `tenant`, or LifecycleRefused saying why not."""
    state = lifecycle_state(tenant)
    if action not in Action.__members__.values():
        raise LifecycleRefused(f"unknown lifecycle action {action!r}")
    row = transition_find(action, state)
    if row is None:
        raise LifecycleRefused(f"{tenant.slug} is {state}; {_verb(action)} does not apply")
    if actor not in row.who:
        raise LifecycleRefused(
            f"{tenant.slug} is {state}: only a platform admin may {_verb(action)} it",
            forbidden=True,
        )
    return row


def lifecycle_actions(*, tenant: Tenant, actor: Actor) -> list[Action]:
    """The actions `actor` may take on `tenant` now (what a page offers)."""
    state = lifecycle_state(tenant)
    return [row.action for row in TRANSITIONS if row.source == state and actor in row.who]


def tenant_lifecycle_apply(
    *, tenant: Tenant, action: str, actor: Actor, actor_name: str, reason: str = ""
) -> Tenant:
    """Make one lifecycle transition, checked against the table on the locked row, and audit
    it (who, why, from, to). LifecycleRefused if the table does not allow it: nothing changes."""
    with dangerously_unscoped():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        row = lifecycle_check(tenant=current, action=action, actor=actor)
        fields: dict[str, object] = {"status": row.target, "updated_at": timezone.now()}
        if row.action == Action.REQUEST_DELETION:
            fields.update(deleted_at=timezone.now(), status_before_deletion=current.status)
        elif row.action == Action.CANCEL_DELETION:
            fields.update(deleted_at=None, status_before_deletion="")
        Tenant.objects.filter(pk=current.pk).update(**fields)
        audit_record(
            actor=actor_name,
            action=row.audit_action,
            tenant=current,
            target=current.slug,
            details={
                "reason": reason,
                "from": current.status,
                "to": row.target,
                **({"was": row.source.before} if row.source.before else {}),
            },
        )
        current.refresh_from_db()
    return current


_VERBS: dict[str, str] = {
    Action.SUSPEND: "suspend",
    Action.RESUME: "resume",
    Action.REQUEST_DELETION: "request the deletion of",
    Action.CANCEL_DELETION: "cancel the deletion of",
}


def _verb(action: str) -> str:
    return _VERBS.get(action, action)


def tenant_plan_set(
    *,
    tenant: Tenant,
    actor: str,
    plan: str,
    rate_limit_per_minute: int | None,
    llm_tokens_per_day: int | None = None,
    reason: str = "",
) -> Tenant:
    """Set what the platform sells a tenant: its plan, its per-minute limit and its daily LLM
    token budget (None: the platform default, the plan's budget). A platform admin's decision,
    never a tenant's own key's."""
    if plan not in Tenant.Plan.values:
        raise LifecycleRefused(f"plan must be one of {', '.join(Tenant.Plan.values)}")
    with dangerously_unscoped():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        limits = {
            "plan": plan,
            "rate_limit_per_minute": rate_limit_per_minute,
            "llm_tokens_per_day": llm_tokens_per_day,
        }
        before = {field: getattr(current, field) for field in limits}
        Tenant.objects.filter(pk=tenant.pk).update(**limits, updated_at=timezone.now())
        audit_record(
            actor=actor,
            action="tenant.plan_set",
            tenant=current,
            target=current.slug,
            details={
                "reason": reason,
                "from": before,
                "to": limits,
            },
        )
        current.refresh_from_db()
    return current
