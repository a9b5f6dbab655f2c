from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tenants.models import ApiKey, Tenant
from tenants.scope import dangerously_unscoped
from tenants.services import api_key_authenticate


def seed_json() -> dict:  # type: ignore[type-arg]
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_seed_demo_is_idempotent() -> None:
    def counts() -> tuple[int, int, int]:
        with dangerously_unscoped():
            return Tenant.objects.count(), ApiKey.objects.count(), get_user_model().objects.count()

    first = seed_json()
    before = counts()
    second = seed_json()
    assert first == second
    assert counts() == before == (3, 3, 1)
    assert [t["slug"] for t in first["tenants"]] == ["acme", "globex", "initech"]
    assert first["operator"]["username"] == "operator"


@pytest.mark.django_db
def test_seed_demo_keys_authenticate_as_their_tenant() -> None:
    data = seed_json()
    for entry in data["tenants"]:
        with dangerously_unscoped():
            assert api_key_authenticate(secret=entry["api_key"]).tenant.slug == entry["slug"]


@pytest.mark.django_db
def test_seed_demo_repairs_a_revoked_demo_key_and_operator_password() -> None:
    from django.utils import timezone

    data = seed_json()
    with dangerously_unscoped():
        ApiKey.objects.update(revoked_at=timezone.now())
    operator = get_user_model().objects.get(username="operator")
    operator.set_password("changed")
    operator.save()
    seed_json()
    with dangerously_unscoped():
        assert api_key_authenticate(secret=data["tenants"][0]["api_key"])
    assert get_user_model().objects.get(username="operator").check_password("smarteros-demo")


@pytest.mark.django_db
def test_operator_can_sign_in_to_the_console(client) -> None:  # type: ignore[no-untyped-def]
    seed_json()
    response = client.post("/login/", {"username": "operator", "password": "smarteros-demo"})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    for slug in ("acme", "globex", "initech"):
        assert slug.encode() in page.content


@pytest.mark.django_db
def test_seed_demo_provisions_the_demo_tenants_like_any_other() -> None:
    from smarteros.events.catalog import tenant_topics
    from smarteros.infra.kafka import admin_client
    from tenants.secrets import tenant_key_ensure

    seed_json()
    with dangerously_unscoped():
        statuses = dict(Tenant.objects.values_list("slug", "status"))
    assert statuses == dict.fromkeys(("acme", "globex", "initech"), Tenant.Status.ACTIVE)
    on_broker = set(admin_client().list_topics(timeout=15).topics)
    for slug in statuses:
        missing = {spec.name for spec in tenant_topics(slug)} - on_broker
        assert not missing, f"{slug}: topics not created: {sorted(missing)[:3]}"
        assert tenant_key_ensure(slug=slug) is False, f"{slug}: no Vault key after seeding"
