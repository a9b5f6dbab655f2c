"""A provisioned tenant's slug cannot change: its topics, Vault key and webhook URLs are named
by it, so a rename would orphan them (the webhook answered 500 InvalidPath, 14 topics missing)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError

from tenants.models import Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_provisioned_tenants_slug_cannot_change_by_any_path(make_tenant: Any) -> None:
    acme = make_tenant("acme").tenant  # active
    with (
        pytest.raises(IntegrityError, match="cannot change once provisioned"),
        dangerously_unscoped(),
    ):
        Tenant.objects.filter(pk=acme.pk).update(slug="acme-renamed")
    with dangerously_unscoped():
        assert Tenant.objects.get(pk=acme.pk).slug == "acme"
        # Other fields still change.
        Tenant.objects.filter(pk=acme.pk).update(name="Acme Renamed")


def test_a_pending_tenants_slug_can_still_be_corrected() -> None:
    with dangerously_unscoped():
        draft = Tenant.objects.create(slug="draft-shop", name="Draft")
        Tenant.objects.filter(pk=draft.pk).update(slug="draft-store")
        assert Tenant.objects.get(pk=draft.pk).slug == "draft-store"


def test_the_admin_shows_the_slug_read_only_once_provisioned(make_tenant: Any) -> None:
    from django.contrib.admin.sites import site
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    acme = make_tenant("acme").tenant
    request = RequestFactory().get("/admin/")
    request.user = User(username="root", is_staff=True, is_superuser=True)
    admin = site._registry[Tenant]
    assert "slug" in admin.get_readonly_fields(request, acme)
    assert "slug" not in admin.get_readonly_fields(request, Tenant(status=Tenant.Status.PENDING))
