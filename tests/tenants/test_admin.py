"""The Django admin as an attacker with a staff account uses it: a tenant admin of globex, and a
staff user with only view permissions and no tenant. Every attempt on a tenant that is not theirs
is refused (403 or simply absent), audited, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tenants.models import ApiKey, AuditEvent, Membership, Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-admin-tests-1"


def staff(username: str, *codenames: str, superuser: bool = False) -> Client:
    user = get_user_model().objects.create_user(
        username, password=PASSWORD, is_staff=True, is_superuser=superuser
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def tenants(make_tenant: Any) -> dict[str, Tenant]:
    return {slug: make_tenant(slug).tenant for slug in ("acme", "globex")}


@pytest.fixture
def globex_admin(tenants: dict[str, Tenant]) -> Client:
    client = staff(
        "globex-admin",
        *(
            f"{verb}_{model}"
            for verb in ("view", "add", "change", "delete")
            for model in ("tenant", "apikey", "membership", "auditevent")
        ),
    )
    with dangerously_unscoped():
        Membership.objects.create(
            user=get_user_model().objects.get(username="globex-admin"),
            tenant=tenants["globex"],
            role=Membership.Role.ADMIN,
        )
    return client


def refusals(action_prefix: str) -> list[AuditEvent]:
    with dangerously_unscoped():
        return list(
            AuditEvent.objects.filter(action__startswith=action_prefix, action__endswith=".refused")
        )


def acme_state() -> tuple[Any, ...]:
    with dangerously_unscoped():
        acme = Tenant.objects.get(slug="acme")
        return (acme.name, acme.status, acme.plan, acme.deleted_at, acme.api_keys.count())


def test_a_tenant_admin_cannot_list_view_edit_provision_or_delete_another_tenant(
    tenants: dict[str, Tenant], globex_admin: Client
) -> None:
    acme = tenants["acme"]
    before = acme_state()
    listing = globex_admin.get("/admin/tenants/tenant/").content.decode()
    assert "globex" in listing and "acme" not in listing
    view = globex_admin.get(f"/admin/tenants/tenant/{acme.pk}/change/")
    assert view.status_code == 403
    assert "globex-admin does not administer the tenant of tenants.Tenant" in view.content.decode()
    edit = globex_admin.post(
        f"/admin/tenants/tenant/{acme.pk}/change/", {"slug": "acme", "name": "Taken"}
    )
    assert edit.status_code == 403
    for action in ("provision", "request_deletion"):
        response = globex_admin.post(
            "/admin/tenants/tenant/",
            {"action": action, "_selected_action": [str(acme.pk)], "index": "0"},
        )
        assert response.status_code == 403, action
        assert "First API key" not in response.content.decode()
    keys = globex_admin.get("/admin/tenants/apikey/").content.decode()
    with dangerously_unscoped():
        acme_key = ApiKey.objects.get(tenant=acme)
    assert acme_key.prefix not in keys
    assert globex_admin.get(f"/admin/tenants/apikey/{acme_key.pk}/change/").status_code == 403
    assert acme_state() == before
    assert {e.action for e in refusals("admin.")} == {
        "admin.view.refused",
        "admin.action.provision.refused",
        "admin.action.request_deletion.refused",
    }
    assert all(e.tenant_id == acme.pk for e in refusals("admin."))


def test_a_tenant_admin_cannot_mint_a_platform_scope_or_a_key_for_another_tenant(
    tenants: dict[str, Tenant], globex_admin: Client
) -> None:
    form = globex_admin.get("/admin/tenants/apikey/add/").content.decode()
    assert "platform.admin" not in form and "tenant_create_tenant" not in form
    assert "agent.admin" in form and 'label="shopify"' in form
    for tenant, scopes, why in (
        (tenants["globex"], ["platform.admin"], "platform.admin"),
        (tenants["globex"], ["tenant.everything"], "tenant.everything"),
        (tenants["acme"], ["*"], "Select a valid choice"),
    ):
        response = globex_admin.post(
            "/admin/tenants/apikey/add/",
            {"tenant": str(tenant.pk), "name": "minted", "scopes_choice": scopes},
        )
        assert response.status_code == 200 and why in response.content.decode(), why
    with dangerously_unscoped():
        assert not ApiKey.objects.filter(name="minted").exists()
    made = globex_admin.post(
        "/admin/tenants/apikey/add/",
        {
            "tenant": str(tenants["globex"].pk),
            "name": "minted",
            "scopes_choice": ["*", "agent.admin"],
        },
        follow=True,
    )
    assert "New API key (shown once" in made.content.decode()
    with dangerously_unscoped():
        assert ApiKey.objects.get(name="minted").scopes == ["*", "agent.admin"]


def test_a_tenant_admin_cannot_change_plan_or_rate_limit_of_their_own_tenant(
    tenants: dict[str, Tenant], globex_admin: Client
) -> None:
    globex = tenants["globex"]
    page = globex_admin.get(f"/admin/tenants/tenant/{globex.pk}/change/")
    assert page.status_code == 200
    response = globex_admin.post(
        f"/admin/tenants/tenant/{globex.pk}/change/",
        {
            "name": "Globex Renamed",
            "plan": "enterprise",
            "rate_limit_per_minute": "1000000",
            "contact_email": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with dangerously_unscoped():
        globex.refresh_from_db()
    assert (globex.name, globex.plan, globex.rate_limit_per_minute) == (
        "Globex Renamed",
        "free",
        None,
    )


def test_a_view_only_staff_user_without_membership_sees_no_tenant_and_runs_no_action(
    tenants: dict[str, Tenant],
) -> None:
    viewer = staff("viewer", "view_tenant", "view_apikey", "view_auditevent")
    before = acme_state()
    listing = viewer.get("/admin/tenants/tenant/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "acme" not in body and "globex" not in body and 'name="action"' not in body
    assert viewer.get(f"/admin/tenants/tenant/{tenants['acme'].pk}/change/").status_code == 403
    for action in ("provision", "request_deletion", "delete_selected"):
        response = viewer.post(
            "/admin/tenants/tenant/",
            {"action": action, "_selected_action": [str(tenants["acme"].pk)], "index": "0"},
        )
        assert response.status_code in (200, 302, 403), action
    assert acme_state() == before
    assert viewer.get("/admin/tenants/apikey/").content.decode().count("sos_live_") == 0


def test_a_platform_admin_sees_and_runs_everything(tenants: dict[str, Tenant]) -> None:
    root = staff("root", superuser=True)
    listing = root.get("/admin/tenants/tenant/").content.decode()
    assert "acme" in listing and "globex" in listing
    form = root.get("/admin/tenants/apikey/add/").content.decode()
    assert "platform.admin" in form
    response = root.post(
        "/admin/tenants/tenant/",
        {"action": "request_deletion", "_selected_action": [str(tenants["acme"].pk)], "index": "0"},
    )
    assert response.status_code == 302
    assert acme_state()[1] == Tenant.Status.DELETED


def test_provisioning_shows_the_first_key_to_the_tenants_own_admin_only(
    tenants: dict[str, Tenant], globex_admin: Client
) -> None:
    import secrets

    with dangerously_unscoped():
        fresh = Tenant.objects.create(slug=f"fresh{secrets.token_hex(3)}", name="Fresh")
        Membership.objects.create(
            user=get_user_model().objects.get(username="globex-admin"),
            tenant=fresh,
            role=Membership.Role.ADMIN,
        )
    outsider = staff("outsider", "view_tenant", "change_tenant")
    refused = outsider.post(
        "/admin/tenants/tenant/",
        {"action": "provision", "_selected_action": [str(fresh.pk)], "index": "0"},
    )
    assert refused.status_code == 403
    with dangerously_unscoped():
        assert not ApiKey.objects.filter(tenant=fresh).exists()
    # globex-admin administers two tenants now: no single tenant scope, queryset filtering only.
    shown = globex_admin.post(
        "/admin/tenants/tenant/",
        {"action": "provision", "_selected_action": [str(fresh.pk)], "index": "0"},
        follow=True,
    )
    assert "First API key (shown once)" in shown.content.decode()
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=fresh)
        assert Tenant.objects.get(pk=fresh.pk).status == Tenant.Status.ACTIVE
    assert key.scopes == ["*", "agent.admin", "tenant.admin"]
