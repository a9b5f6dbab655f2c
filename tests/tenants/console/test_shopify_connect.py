"""Connecting Shopify from the console: the Admin API version is one of the supported ones."""

from __future__ import annotations

import pytest

from integrations.models import IntegrationConnection
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_unknown_api_version_is_refused_naming_the_setting(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/integrations/"
    data = {
        "provider": "shopify",
        "shopify-shop_domain": f"{world.acme.slug}.myshopify.com",
        "shopify-api_version": "2025-10",
        "shopify-access_token": "shpat_console_token",
    }
    admin = world.client("admin")
    refused = admin.post(url, data)
    assert refused.status_code == 400
    assert "api_version: &#x27;2025-10&#x27; is not a supported" in refused.content.decode()
    with dangerously_unscoped():
        assert not IntegrationConnection.objects.filter(tenant=world.acme).exists()
    assert admin.post(url, {**data, "shopify-api_version": "2027-01"}).status_code == 302
    with dangerously_unscoped():
        saved = IntegrationConnection.objects.get(tenant=world.acme)
    assert saved.config["api_version"] == "2027-01"
