"""Refused console actions are audited without letting anyone grow the audit table: a repeat of
the same refusal within a minute adds to the first row's `repeats`, and one person gets at most
REFUSALS_PER_ACTOR rows a minute (further refusals add to `suppressed`)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.audit import REFUSALS_PER_ACTOR
from tenants.models import AuditEvent, Membership
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(make_tenant: Any) -> tuple[Client, Any, str]:
    tenant = make_tenant(f"au{secrets.token_hex(3)}").tenant
    user = get_user_model().objects.create_user(f"viewer{secrets.token_hex(3)}", password="x")
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client, tenant, f"user:{user.get_username()}"


def refusal_rows(actor: str) -> list[AuditEvent]:
    with dangerously_unscoped():
        return list(
            AuditEvent.objects.filter(actor=actor, action__endswith=".refused").order_by("pk")
        )


def test_the_same_refusal_repeated_is_one_row_counting_repeats(
    viewer: tuple[Client, Any, str],
) -> None:
    client, tenant, actor = viewer
    url = f"/tenants/{tenant.slug}/lifecycle/"
    suspend = {"action": "suspend", "suspend-reason": "x", "suspend-confirm": tenant.slug}
    for _ in range(100):
        assert client.post(url, suspend).status_code == 403
    [row] = refusal_rows(actor)
    assert row.action == "tenant.suspend.refused" and row.tenant_id == tenant.pk
    assert row.details["repeats"] == 99 and "platform admins" in row.details["reason"]


def test_refusals_for_many_targets_are_capped_per_person(
    viewer: tuple[Client, Any, str],
) -> None:
    client, _, actor = viewer
    for i in range(100):
        response = client.post(f"/tenants/nosuch{i}x/keys/", {"name": "k", "scopes": ["*"]})
        assert response.status_code == 403
    rows = refusal_rows(actor)
    assert len(rows) == REFUSALS_PER_ACTOR
    assert {row.target for row in rows} == {f"nosuch{i}x" for i in range(REFUSALS_PER_ACTOR)}
    assert rows[-1].details["suppressed"] == 100 - REFUSALS_PER_ACTOR


def test_different_refusals_by_one_person_are_each_recorded(
    viewer: tuple[Client, Any, str],
) -> None:
    client, tenant, actor = viewer
    url = f"/tenants/{tenant.slug}/lifecycle/"
    client.post(url, {"action": "suspend", "suspend-reason": "x", "suspend-confirm": tenant.slug})
    client.post(url, {"action": "delete", "delete-reason": "x", "delete-confirm": tenant.slug})
    assert [row.action for row in refusal_rows(actor)] == [
        "tenant.suspend.refused",
        "tenant.delete.refused",
    ]
