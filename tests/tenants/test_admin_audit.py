"""Changes in the Django admin are audited as fields a person can read in the console: who made
them, whom they concern, each field with its value (a change from and to), staff and superuser
flags and memberships included, and never a password or its hash."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import AuditEvent, Membership, Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-admin-audit-1"


def entries(target: str) -> list[tuple[str, str, dict[str, Any]]]:
    with dangerously_unscoped():
        return list(
            AuditEvent.objects.filter(target=target)
            .order_by("id")
            .values_list("actor", "action", "details")
        )


@pytest.fixture
def root() -> Client:
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    return client


def test_a_user_made_staff_and_superuser_in_the_admin_is_audited_without_secrets(
    root: Client,
) -> None:
    added = root.post(
        "/admin/auth/user/add/",
        {
            "username": "made-in-admin",
            "usable_password": "true",
            "password1": "Made-in-admin-pw-7",
            "password2": "Made-in-admin-pw-7",
            "_save": "Save",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    user = get_user_model().objects.get(username="made-in-admin")
    change = root.get(f"/admin/auth/user/{user.pk}/change/")
    assert change.status_code == 200
    changed = root.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "made-in-admin",
            "first_name": "",
            "last_name": "",
            "email": "made@example.com",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "initial-date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "initial-date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "_save": "Save",
        },
    )
    assert changed.status_code == 302, changed.content.decode()[:3000]
    password = root.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"usable_password": "true", "password1": "Other-pw-8812", "password2": "Other-pw-8812"},
    )
    assert password.status_code == 302, password.content.decode()[:2000]

    trail = entries("user:made-in-admin")
    assert [(actor, action) for actor, action, _ in trail] == [
        ("user:root", "user.create"),
        ("user:root", "user.change"),
        ("user:root", "user.change"),
    ]
    created, flags, new_password = (details for _, _, details in trail)
    assert created["username"] == "made-in-admin" and created["password_set"] is True
    assert flags["is_staff"] == {"from": False, "to": True}
    assert flags["is_superuser"] == {"from": False, "to": True}
    assert flags["email"] == {"from": "", "to": "made@example.com"}
    assert new_password == {"password_changed": True, "via": "django admin"}
    text = repr(trail)
    assert "Made-in-admin-pw-7" not in text and "Other-pw-8812" not in text
    assert "pbkdf2" not in text and "password1" not in text

    page = root.get("/tenants/audit/", {"subject": "made-in-admin"}).content.decode()
    assert "<strong>is staff</strong>: no → yes" in page
    assert "<strong>is superuser</strong>: no → yes" in page
    assert "<strong>password set</strong>: yes" in page and "{" not in page.split('id="audit"')[1]


def test_a_membership_granted_and_changed_in_the_admin_is_audited_as_members_are(
    root: Client, make_tenant: Any
) -> None:
    acme = make_tenant("acme").tenant
    person = get_user_model().objects.create_user("alice", password=PASSWORD)
    url = f"/admin/tenants/tenant/{acme.pk}/change/"
    base = {
        "name": acme.name,
        "plan": acme.plan,
        "rate_limit_per_minute": "",
        "llm_tokens_per_day": "",
        "contact_email": "",
        "mask_personal_data": "on",
    }
    granted = root.post(
        url,
        {
            **base,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": str(person.pk),
            "memberships-0-role": "operator",
        },
    )
    assert granted.status_code == 302, granted.content.decode()[:3000]
    with dangerously_unscoped():
        membership = Membership.objects.get(user=person, tenant=acme)
    promoted = root.post(
        url,
        {
            **base,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": str(membership.pk),
            "memberships-0-tenant": str(acme.pk),
            "memberships-0-user": str(person.pk),
            "memberships-0-role": "admin",
        },
    )
    assert promoted.status_code == 302, promoted.content.decode()[:3000]
    removed = root.post(
        url,
        {
            **base,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": str(membership.pk),
            "memberships-0-tenant": str(acme.pk),
            "memberships-0-user": str(person.pk),
            "memberships-0-role": "admin",
            "memberships-0-DELETE": "on",
        },
    )
    assert removed.status_code == 302, removed.content.decode()[:3000]
    via = {"via": "django admin"}
    assert entries("user:alice") == [
        ("user:root", "member.add", {"role": "operator", **via}),
        ("user:root", "member.role", {"from": "operator", "to": "admin", **via}),
        ("user:root", "member.remove", {"role": "admin", **via}),
    ]
    with dangerously_unscoped():
        assert set(
            AuditEvent.objects.filter(target="user:alice").values_list("tenant_id", flat=True)
        ) == {acme.pk}
        # Saving the tenant's page without changing the tenant itself adds no empty entry.
        assert not AuditEvent.objects.filter(
            target=f"tenants.Tenant:{acme.pk}", action="admin.change", details={}
        ).exists()


def test_a_tenant_field_changed_in_the_admin_names_its_value(
    root: Client, make_tenant: Any
) -> None:
    acme = make_tenant("acme").tenant
    answer = root.post(
        f"/admin/tenants/tenant/{acme.pk}/change/",
        {
            "name": "Acme Renamed",
            "plan": "enterprise",
            "rate_limit_per_minute": "",
            "llm_tokens_per_day": "",
            "contact_email": "",
            "mask_personal_data": "on",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    [(actor, action, details)] = entries(f"tenants.Tenant:{acme.pk}")
    assert (actor, action) == ("user:root", "admin.change")
    assert details["name"] == {"from": acme.name, "to": "Acme Renamed"}
    assert details["plan"] == {"from": Tenant.Plan.FREE, "to": "enterprise"}
