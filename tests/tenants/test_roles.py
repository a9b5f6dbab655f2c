"""Roles in a tenant as people meet them: an operator replays dead letters, exports topics and
manages integrations, but is refused (403, audited) on people, API keys and the lifecycle, and
never enters the Django admin; a viewer still replays and exports nothing; OAuth consent lets
each role grant what it may do itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from mcp_tools.oauth.scopes import scopes_for_role
from smarteros.events.catalog import tenant_every_topic
from smarteros.events.topics import topics_sync
from telemetry.topics.access import TopicGrant
from tenants.models import ApiKey, AuditEvent, Membership, Tenant
from tenants.roles import LEAST_RANK, Capability, Rank, role_may, roles_with
from tenants.scope import dangerously_unscoped
from tests.telemetry.topics.conftest import produce

PASSWORD = "roles-test-pw-1"


def test_the_table_ranks_viewer_operator_admin_platform_and_unknown_roles_hold_nothing() -> None:
    operator_may = {c for c in Capability if role_may("operator", c)}
    assert operator_may == {
        Capability.READ,
        Capability.REPLAY,
        Capability.EXPORT,
        Capability.INTEGRATIONS,
        Capability.GRANT_WRITE_SCOPES,
    }
    assert {c for c in Capability if role_may("viewer", c)} == {Capability.READ}
    assert {c for c in Capability if role_may("admin", c)} == set(Capability) - {
        Capability.PLATFORM
    }
    assert all(role_may("platform", c) for c in Capability)
    assert not any(role_may(r, Capability.READ) for r in ("", "owner", "Admin", "superuser"))
    assert set(LEAST_RANK) == set(Capability)  # every capability is decided by the table
    assert roles_with(Capability.DJANGO_ADMIN) == ("admin",)
    assert set(roles_with(Capability.REPLAY)) == {"operator", "admin"}
    assert set(Membership.Role.values) == {"viewer", "operator", "admin"}
    assert [r.value for r in Rank] == sorted(r.value for r in Rank)


def test_topic_grants_let_operators_replay_and_export_and_viewers_neither() -> None:
    def grant(role: str, topic: str = "acme.shopify.webhooks.dlq") -> TopicGrant:
        return TopicGrant(topic, 1, "acme", role)

    assert grant("operator").can_replay and grant("operator").can_export
    assert grant("admin").can_replay and grant("platform").can_replay
    assert not grant("viewer").can_replay and not grant("viewer").can_export
    assert not grant("operator", "acme.shopify.webhooks").can_replay  # not a dead letter
    assert not grant("owner").can_export


def test_oauth_consent_grants_only_what_the_role_may_do() -> None:
    asked = ["shopify.read", "shopify.write", "*", "tenant.admin", "agent.admin"]
    assert scopes_for_role(asked, role="admin") == []
    assert scopes_for_role(asked, role="platform") == []
    assert scopes_for_role(asked, role="operator") == ["tenant.admin", "agent.admin"]
    assert scopes_for_role(asked, role="viewer") == [
        "shopify.write",
        "*",
        "tenant.admin",
        "agent.admin",
    ]
    assert scopes_for_role(["shopify.read"], role="unknown") == []
    assert scopes_for_role(["n8n.write"], role="unknown") == ["n8n.write"]


@pytest.fixture
def people(make_tenant: Any) -> dict[str, Any]:
    """acme with an admin, an operator and a viewer."""
    acme = make_tenant("acme").tenant
    model = get_user_model()
    users = {
        role: model.objects.create_user(f"acme-{role}", password=PASSWORD, is_staff=True)
        for role in ("admin", "operator", "viewer")
    }
    with dangerously_unscoped():
        for role, user in users.items():
            Membership.objects.create(user=user, tenant=acme, role=role)
    return {"acme": acme, **users}


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def refused(action: str) -> list[AuditEvent]:
    with dangerously_unscoped():
        return list(
            AuditEvent.objects.filter(action=f"{action}.refused", actor="user:acme-operator")
        )


@pytest.mark.django_db
def test_an_operator_is_refused_people_keys_and_lifecycle_audited(people: dict[str, Any]) -> None:
    slug = people["acme"].slug
    operator = client_of(people["operator"])
    with dangerously_unscoped():
        key = ApiKey.objects.filter(tenant=people["acme"]).first()
    assert key is not None

    page = operator.get(f"/tenants/{slug}/people/").content.decode()
    assert "acme-viewer" in page and 'id="invite-form"' not in page
    assert "your role: operator" in page
    invite = {"action": "invite", "username": "sneaky", "role": "admin"}
    assert operator.post(f"/tenants/{slug}/people/", invite).status_code == 403
    promote = {"action": "role", "member": people["operator"].pk, "role": "admin"}
    assert operator.post(f"/tenants/{slug}/people/", promote).status_code == 403
    created = operator.post(f"/tenants/{slug}/keys/", {"name": "mine", "scopes": ["shopify.read"]})
    assert created.status_code == 403
    assert operator.post(f"/tenants/{slug}/keys/{key.pk}/revoke/").status_code == 403
    lifecycle = {"action": "delete", "reason": "x", "confirm": slug}
    answer = operator.post(f"/tenants/{slug}/lifecycle/", lifecycle)
    assert answer.status_code == 403 and "a tenant admin may do this" in answer.content.decode()

    with dangerously_unscoped():
        assert Membership.objects.get(user=people["operator"]).role == "operator"
        assert ApiKey.objects.filter(tenant=people["acme"]).count() == 1
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None
        assert Tenant.objects.get(pk=people["acme"].pk).status == Tenant.Status.ACTIVE
    for action in ("member.invite", "member.role", "api_key.create", "api_key.revoke"):
        assert refused(action), action
    assert refused("tenant.delete")

    # The admin offers the operator role, and an operator can be invited and promoted.
    admin = client_of(people["admin"])
    form = admin.get(f"/tenants/{slug}/people/").content.decode()
    assert 'value="operator"' in form and "Tenant operator" in form
    invited = admin.post(
        f"/tenants/{slug}/people/", {"action": "invite", "username": "op2", "role": "operator"}
    )
    assert invited.status_code == 200
    with dangerously_unscoped():
        assert Membership.objects.get(user__username="op2").role == "operator"


@pytest.mark.django_db
def test_an_operator_manages_integrations_and_a_viewer_does_not(people: dict[str, Any]) -> None:
    slug = people["acme"].slug
    url = f"/tenants/{slug}/integrations/n8n/disconnect/"
    # The operator is let through to the page's own question (type the name); the viewer not.
    assert client_of(people["operator"]).post(url).status_code == 400
    assert client_of(people["viewer"]).post(url).status_code == 403
    page = client_of(people["operator"]).get(f"/tenants/{slug}/integrations/").content.decode()
    assert 'name="provider"' in page


@pytest.mark.django_db
def test_an_operator_stays_out_of_the_django_admin(people: dict[str, Any]) -> None:
    """Even with every model permission, an operator's tenant is not theirs in the admin (that
    is a tenant admin's); the admin's own copy is there for comparison."""
    from django.contrib.auth.models import Permission

    for role in ("operator", "admin"):
        people[role].user_permissions.add(
            *Permission.objects.filter(content_type__app_label="tenants")
        )
    operator, admin = client_of(people["operator"]), client_of(people["admin"])
    with dangerously_unscoped():
        prefix = ApiKey.objects.get(tenant=people["acme"]).prefix
    assert prefix in admin.get("/admin/tenants/apikey/").content.decode()
    assert prefix not in operator.get("/admin/tenants/apikey/").content.decode()
    change = f"/admin/tenants/tenant/{people['acme'].pk}/change/"
    assert admin.get(change).status_code == 200
    assert operator.get(change).status_code == 403


DLQ = "acme.shopify.webhooks.dlq"


@pytest.mark.django_db(transaction=True)
def test_an_operator_replays_and_exports_and_a_viewer_cannot(
    broker: Any, people: dict[str, Any]
) -> None:
    topics_sync(tenant_every_topic("acme"))
    produce(
        DLQ,
        {"n": "op-replay"},
        key="order-1",
        partition=0,
        headers=[
            ("dlq.reason", b"PermanentFailure: total missing"),
            ("dlq.topic", b"acme.shopify.webhooks"),
            ("dlq.partition", b"0"),
            ("dlq.offset", b"0"),
        ],
    )
    place = {"topic": DLQ, "partition": 0, "offset": 0}
    viewer, operator = client_of(people["viewer"]), client_of(people["operator"])
    assert viewer.post("/topics/replay/", place).status_code == 403
    assert viewer.get("/topics/export/", {"topic": DLQ, "start": "oldest"}).status_code == 403
    page = viewer.get("/topics/view/", {"topic": DLQ}).content.decode()
    assert 'data-can-export="0"' in page

    replayed = operator.post("/topics/replay/", place)
    assert replayed.status_code == 200, replayed.content.decode()[:500]
    exported = operator.get("/topics/export/", {"topic": DLQ, "start": "oldest", "limit": 5})
    assert exported.status_code == 200
    lines = [json.loads(line) for line in exported.content.decode().splitlines() if line]
    assert len(lines) == 1
    with dangerously_unscoped():
        actions = set(
            AuditEvent.objects.filter(actor="user:acme-operator").values_list("action", flat=True)
        )
    assert {"topics.dead_letter_replay", "topics.export"} <= actions
