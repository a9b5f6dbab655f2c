"""The tenant lifecycle is one table, and every surface obeys it: every state x every action x
every role is tried through the service, the console and the admin, and a refused transition
changes nothing. Plus the bypass that was found (a tenant admin lifting a platform suspension
by requesting deletion twice and cancelling) and a walk of the code for status writes made
anywhere but the lifecycle."""

from __future__ import annotations

import ast
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from tenants.lifecycle import (
    DEPROVISIONED,
    STATES,
    TRANSITIONS,
    Action,
    Actor,
    LifecycleRefused,
    State,
    lifecycle_actions,
    tenant_lifecycle_apply,
)
from tenants.models import AuditEvent, Membership, Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BOTH = {"tenant_admin", "platform"}
PLATFORM = {"platform"}

# The specification, written out independently of tenants.lifecycle:
# (status, status before the deletion, action) -> (who may, the status it leads to).
EXPECTED: dict[tuple[str, str, str], tuple[set[str], str]] = {
    ("active", "", "suspend"): (PLATFORM, "suspended"),
    ("suspended", "", "resume"): (PLATFORM, "active"),
    **{(s, "", "delete"): (BOTH, "deleted") for s in ("pending", "provisioning", "active")},
    ("suspended", "", "delete"): (BOTH, "deleted"),
    **{("deleted", s, "cancel_delete"): (BOTH, s) for s in ("pending", "provisioning", "active")},
    # Cancelling must never lift a suspension: only the platform brings it back, suspended.
    ("deleted", "suspended", "cancel_delete"): (PLATFORM, "suspended"),
}


def test_the_table_is_the_specification() -> None:
    table = {
        (row.source.status, row.source.before, row.action.value): (
            {actor.value for actor in row.who},
            row.target,
        )
        for row in TRANSITIONS
    }
    assert table == EXPECTED
    assert len(TRANSITIONS) == len(table)  # one row per state and action


def put_in(tenant: Tenant, state: State) -> Tenant:
    """Put the tenant's row in `state` directly, as if it had got there."""
    fields: dict[str, Any] = {
        "status": Tenant.Status.DELETED if state.status == DEPROVISIONED else state.status,
        "status_before_deletion": state.before
        or (Tenant.Status.ACTIVE if state.status == DEPROVISIONED else ""),
        "deleted_at": timezone.now() if state.status in ("deleted", DEPROVISIONED) else None,
        "deprovisioned_at": timezone.now() if state.status == DEPROVISIONED else None,
    }
    with dangerously_unscoped():
        Tenant.objects.filter(pk=tenant.pk).update(**fields)
        return Tenant.objects.get(pk=tenant.pk)


def snapshot(tenant: Tenant) -> tuple[Any, ...]:
    with dangerously_unscoped():
        row = Tenant.objects.get(pk=tenant.pk)
        audited = AuditEvent.objects.filter(tenant_id=tenant.pk).exclude(
            action__endswith=".refused"
        )
        return (
            row.status,
            row.status_before_deletion,
            row.deleted_at,
            row.deprovisioned_at,
            row.updated_at,
            audited.count(),
        )


def combinations() -> list[tuple[State, Action, Actor]]:
    return [(state, action, actor) for state in STATES for action in Action for actor in Actor]


def expected(state: State, action: Action, actor: Actor) -> str | None:
    """The status the transition leads to, or None if it must be refused."""
    rule = EXPECTED.get((state.status, state.before, action.value))
    return rule[1] if rule is not None and actor.value in rule[0] else None


def test_every_state_action_and_role_through_the_service(make_tenant: Any) -> None:
    tenant = make_tenant(f"lc{secrets.token_hex(3)}").tenant
    allowed = 0
    for state, action, actor in combinations():
        current = put_in(tenant, state)
        before = snapshot(tenant)
        target = expected(state, action, actor)
        if target is None:
            with pytest.raises(LifecycleRefused):
                tenant_lifecycle_apply(
                    tenant=current, action=action, actor=actor, actor_name="user:t", reason="r"
                )
            assert snapshot(tenant) == before, (state, action, actor)
            assert action not in lifecycle_actions(tenant=current, actor=actor)
            continue
        allowed += 1
        assert action in lifecycle_actions(tenant=current, actor=actor)
        after = tenant_lifecycle_apply(
            tenant=current, action=action, actor=actor, actor_name="user:t", reason="why"
        )
        assert after.status == target, (state, action, actor)
        if action == Action.REQUEST_DELETION:
            assert after.status_before_deletion == state.status and after.deleted_at
        if action == Action.CANCEL_DELETION:
            assert after.deleted_at is None and after.status_before_deletion == ""
        with dangerously_unscoped():
            entry = AuditEvent.objects.filter(tenant_id=tenant.pk).order_by("-pk").first()
        assert entry is not None and entry.details["to"] == target
        assert entry.details["from"] == state.status and entry.details["reason"] == "why"
    assert allowed == sum(len(who) for who, _ in EXPECTED.values())


@pytest.fixture
def people(make_tenant: Any) -> dict[str, Any]:
    tenant = make_tenant(f"lcw{secrets.token_hex(3)}").tenant
    users = get_user_model().objects
    admin = users.create_user(f"adm{secrets.token_hex(3)}", password="x", is_staff=True)
    admin.user_permissions.set(
        Permission.objects.filter(codename__in=["view_tenant", "change_tenant"])
    )
    platform = users.create_superuser(f"plat{secrets.token_hex(3)}", password="x")
    with dangerously_unscoped():
        Membership.objects.create(user=admin, tenant=tenant, role=Membership.Role.ADMIN)
    clients = {}
    for actor, user in ((Actor.TENANT_ADMIN, admin), (Actor.PLATFORM, platform)):
        client = Client()
        client.force_login(user)
        clients[actor] = client
    return {"tenant": tenant, "clients": clients}


def test_every_state_action_and_role_through_the_console(people: dict[str, Any]) -> None:
    tenant = people["tenant"]
    url = f"/tenants/{tenant.slug}/lifecycle/"
    for state, action, actor in combinations():
        put_in(tenant, state)
        before = snapshot(tenant)
        page = people["clients"][actor].get(url).content.decode()
        response = people["clients"][actor].post(
            url,
            {
                "action": action.value,
                f"{action.value}-reason": "console walk",
                f"{action.value}-confirm": tenant.slug,
            },
        )
        target = expected(state, action, actor)
        where = (str(state), action.value, actor.value)
        if target is None:
            assert response.status_code in (403, 409), (where, response.status_code)
            assert snapshot(tenant) == before, where
            assert f'id="form-{action.value}"' not in page, where  # not offered either
        else:
            assert response.status_code == 302, (where, response.content[:300])
            assert snapshot(tenant)[0] == target, where
            assert f'id="form-{action.value}"' in page, where


ADMIN_ACTIONS = {
    Action.SUSPEND: "suspend",
    Action.RESUME: "resume",
    Action.REQUEST_DELETION: "request_deletion",
    Action.CANCEL_DELETION: "cancel_deletion",
}


def test_every_state_action_and_role_through_the_admin(people: dict[str, Any]) -> None:
    tenant = people["tenant"]
    for state, action, actor in combinations():
        put_in(tenant, state)
        before = snapshot(tenant)
        people["clients"][actor].post(
            "/admin/tenants/tenant/",
            {"action": ADMIN_ACTIONS[action], "_selected_action": [str(tenant.pk)], "index": "0"},
        )
        target = expected(state, action, actor)
        where = (str(state), action.value, actor.value)
        if target is None:
            assert snapshot(tenant) == before, where
        else:
            assert snapshot(tenant)[0] == target, where


def test_the_admin_form_cannot_set_the_status(people: dict[str, Any]) -> None:
    tenant = put_in(people["tenant"], State(Tenant.Status.SUSPENDED))
    form = people["clients"][Actor.PLATFORM].get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert form.status_code == 200 and 'name="status"' not in form.content.decode()


def test_a_tenant_admin_cannot_lift_a_suspension_by_deleting_twice_and_cancelling(
    people: dict[str, Any],
) -> None:
    """The attack as found: a suspended tenant's admin requests deletion twice (the second was
    accepted and recorded `from = deleted`), then cancels: the tenant came back active."""
    tenant = put_in(people["tenant"], State(Tenant.Status.SUSPENDED))
    admin = people["clients"][Actor.TENANT_ADMIN]
    url = f"/tenants/{tenant.slug}/lifecycle/"
    delete = {"action": "delete", "delete-reason": "bye", "delete-confirm": tenant.slug}
    assert admin.post(url, delete).status_code == 302
    first = snapshot(tenant)
    assert first[:2] == ("deleted", "suspended")
    again = admin.post(url, delete)
    assert again.status_code == 409 and "does not apply" in again.content.decode()
    assert snapshot(tenant) == first  # the grace period did not restart either
    cancel = admin.post(url, {"action": "cancel_delete", "cancel_delete-reason": "back"})
    assert cancel.status_code == 403 and "only a platform admin" in cancel.content.decode()
    assert snapshot(tenant) == first
    page = admin.get(url).content.decode()
    assert 'id="form-cancel_delete"' not in page and "only a platform admin" in page
    platform = people["clients"][Actor.PLATFORM]
    restored = platform.post(url, {"action": "cancel_delete", "cancel_delete-reason": "ok"})
    assert restored.status_code == 302
    assert snapshot(tenant)[:3] == ("suspended", "", None)  # suspended, not active


def test_a_deletion_stored_before_its_status_was_is_the_platforms_to_cancel(
    people: dict[str, Any],
) -> None:
    """A deletion pending from before the status was stored, its earlier status unknown."""
    tenant = put_in(people["tenant"], State(Tenant.Status.DELETED, Tenant.Status.ACTIVE))
    with dangerously_unscoped():
        Tenant.objects.filter(pk=tenant.pk).update(status_before_deletion="")
        tenant = Tenant.objects.get(pk=tenant.pk)
    with pytest.raises(LifecycleRefused, match="only a platform admin"):
        tenant_lifecycle_apply(
            tenant=tenant,
            action=Action.CANCEL_DELETION,
            actor=Actor.TENANT_ADMIN,
            actor_name="user:t",
        )
    back = tenant_lifecycle_apply(
        tenant=tenant, action=Action.CANCEL_DELETION, actor=Actor.PLATFORM, actor_name="user:p"
    )
    assert back.status == "suspended"


def test_the_migration_recovers_the_status_a_pending_deletion_interrupted(
    make_tenant: Any,
) -> None:
    """The exploit's audit trail (from=suspended, then from=deleted): the backfill takes the
    last status that was not itself `deleted`."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("tenants.migrations.0009_tenant_status_before_deletion")
    tenant = make_tenant(f"mig{secrets.token_hex(3)}").tenant
    with dangerously_unscoped():
        Tenant.objects.filter(pk=tenant.pk).update(status="deleted", deleted_at=timezone.now())
        for before in ("suspended", "deleted"):
            AuditEvent.objects.create(
                tenant=tenant,
                actor="user:x",
                action="tenant.delete_requested",
                target=tenant.slug,
                details={"from": before},
            )
        migration.backfill(apps, None)
        assert Tenant.objects.get(pk=tenant.pk).status_before_deletion == "suspended"


# The code walk: only the lifecycle moves a tenant into or out of suspension or deletion.
LIFECYCLE = "tenants/lifecycle.py"
# Provisioning moves a tenant through pending -> provisioning -> active; seeding and creation
# make rows in their first state.
STATUS_WRITERS = {LIFECYCLE, "tenants/provisioning.py", "tenants/demo.py", "tenants/services.py"}
LIFECYCLE_ONLY = {"SUSPENDED", "DELETED"}
LIFECYCLE_FIELDS = {"deleted_at", "status_before_deletion"}
WRITES = {"update", "create", "get_or_create", "update_or_create", "save", "bulk_update"}


def _status_value(node: ast.AST) -> str | None:
    """`X` if the node is `Tenant.Status.X`."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "Status"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "Tenant"
    ):
        return node.attr
    return None


def status_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, status or field) of every write of a tenant's status or deletion fields."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            values = [kw.value for kw in node.keywords if kw.arg == "status"]
            if name in WRITES:
                found += [(node.lineno, v) for v in map(_status_value, values) if v]
                found += [
                    (node.lineno, kw.arg) for kw in node.keywords if kw.arg in LIFECYCLE_FIELDS
                ]
            if "status" in name.lower():
                found += [(node.lineno, v) for v in map(_status_value, node.args) if v]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                status = _status_value(value)
                if isinstance(key, ast.Constant) and key.value == "status" and status:
                    found.append((node.lineno, status))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in {
                    "status",
                    *LIFECYCLE_FIELDS,
                }:
                    status = _status_value(node.value)
                    if status is not None or target.attr in LIFECYCLE_FIELDS:
                        found.append((node.lineno, status or target.attr))
    return found


def python_files() -> list[Path]:
    """The project's modules: not tests, migrations, benchmarks or installed packages."""
    skip = {"tests", "node_modules", "bench", "migrations", "staticfiles"}
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        found += [Path(folder) / name for name in files if name.endswith(".py")]
    return sorted(found)


def test_no_module_but_the_lifecycle_suspends_deletes_or_restores_a_tenant() -> None:
    offenders = []
    for path in python_files():
        relative = path.relative_to(ROOT).as_posix()
        for line, what in status_writes(ast.parse(path.read_text(), relative)):
            if relative == LIFECYCLE:
                continue
            if relative not in STATUS_WRITERS or what in LIFECYCLE_ONLY | LIFECYCLE_FIELDS:
                offenders.append(f"{relative}:{line} writes {what}")
    assert offenders == []


def test_the_code_walk_finds_the_writes_it_forbids() -> None:
    """The walk itself, on the shapes a bypass would take."""
    source = """
Tenant.objects.filter(pk=1).update(status=Tenant.Status.SUSPENDED)
Tenant.objects.filter(pk=1).update(status=Tenant.Status.ACTIVE, deleted_at=None)
tenant.status = Tenant.Status.DELETED
Tenant.objects.get_or_create(slug="x", defaults={"status": Tenant.Status.SUSPENDED})
_set_status(tenant, Tenant.Status.ACTIVE)
Tenant.objects.filter(status=Tenant.Status.DELETED).count()
"""
    assert sorted(status_writes(ast.parse(source))) == [
        (2, "SUSPENDED"),
        (3, "ACTIVE"),
        (3, "deleted_at"),
        (4, "DELETED"),
        (5, "SUSPENDED"),
        (6, "ACTIVE"),
    ]
