"""Editing a connection in the console: a secret left blank is kept, one is cleared only by its
box, and the saved settings are shown (secrets never)."""

from __future__ import annotations

import pytest

from integrations.connections import connection_credentials
from integrations.models import IntegrationConnection
from tenants.models import AuditEvent
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


def stored(world: World) -> tuple[dict[str, str], dict[str, str]]:
    with dangerously_unscoped():
        connection = IntegrationConnection.objects.get(tenant=world.acme, provider="shopify")
        return dict(connection.config), dict(connection_credentials(connection))


def test_changing_a_setting_keeps_the_secrets_left_blank(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/integrations/"
    shop = f"{world.acme.slug}.myshopify.com"
    admin = world.client("admin")
    first = {
        "provider": "shopify",
        "shopify-shop_domain": shop,
        "shopify-access_token": "shpat_console_token",
        "shopify-app_secret": "app-secret-signing-webhooks",
    }
    assert admin.post(url, first).status_code == 302
    page = admin.get(url).content.decode()
    assert f'value="{shop}"' in page  # the saved setting is shown
    assert "shpat_console_token" not in page and "app-secret-signing-webhooks" not in page
    # Only the API version changes; both secrets are left blank.
    edit = {"provider": "shopify", "shopify-shop_domain": shop, "shopify-api_version": "2027-01"}
    assert admin.post(url, edit).status_code == 302
    config, secrets = stored(world)
    assert config["api_version"] == "2027-01"
    assert secrets == {
        "access_token": "shpat_console_token",
        "app_secret": "app-secret-signing-webhooks",
    }
    # A new value replaces one secret; the box clears the other, explicitly.
    replaced = {**edit, "shopify-access_token": "shpat_new_token", "shopify-clear_app_secret": "on"}
    assert admin.post(url, replaced).status_code == 302
    assert stored(world)[1] == {"access_token": "shpat_new_token"}
    with dangerously_unscoped():
        audit = AuditEvent.objects.filter(action="integration.connect", tenant=world.acme)
        last = audit.order_by("-id").first()
    assert last is not None
    assert last.details["secrets_cleared"] == ["app_secret"]
    assert last.details["secrets_replaced"] == ["access_token"]


def test_a_required_secret_has_no_clear_box(world: World) -> None:
    page = world.client("admin").get(f"/tenants/{world.acme.slug}/integrations/").content
    assert b"shopify-clear_app_secret" in page and b"shopify-clear_access_token" not in page
