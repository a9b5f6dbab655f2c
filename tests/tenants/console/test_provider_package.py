"""A provider is one package: AcmeCRM (tests/fixtures/acmecrm) declares itself and is then in
the console's form, the admin's choices, the webhook URL, the probe and the config check, with
no other file naming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from integrations.models import IntegrationConnection
from integrations.probe import integration_probe
from integrations.providers import provider_unregister, providers
from integrations.services import integration_connect
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acmecrm() -> Iterator[None]:
    import tests.fixtures.acmecrm.provider  # noqa: F401  (declaring it is importing it)

    yield
    provider_unregister("acmecrm")


def test_a_provider_package_is_found_everywhere(world: World, acmecrm: None) -> None:
    assert "acmecrm" in providers()
    slug = world.acme.slug
    # The config check: the shared rules (required fields, the egress gate, the external id's
    # form) and the provider's own.
    refusals = {
        "needs: account": ({}, {"api_token": "t"}),
        "base_url is refused": ({"account": "acme-1", "base_url": "http://169.254.169.254/"}, {}),
        "account 'acme-x' is not a valid acmecrm account": ({"account": "acme-x"}, {}),
        "region must be one of eu, us": ({"account": "acme-1", "region": "mars"}, {}),
    }
    for message, (config, credentials) in refusals.items():
        with pytest.raises(ValueError, match=message):
            integration_connect(
                tenant=world.acme,
                provider="acmecrm",
                config=config,
                credentials=credentials or {"api_token": "t"},
            )
    # The console's form, with its help and webhook URL; saving it connects the tenant.
    admin = world.client("admin")
    page = admin.get(f"/tenants/{slug}/integrations/").content.decode()
    assert 'name="acmecrm-account"' in page and 'name="acmecrm-api_token"' in page
    assert "In AcmeCRM: Settings → Hooks" in page and f"/hooks/acmecrm/{slug}/" in page
    saved = admin.post(
        f"/tenants/{slug}/integrations/",
        {"provider": "acmecrm", "acmecrm-account": "acme-42", "acmecrm-api_token": "tok"},
    )
    assert saved.status_code == 302
    with dangerously_unscoped():
        connection = IntegrationConnection.objects.get(tenant=world.acme, provider="acmecrm")
    assert connection.external_id == "acme-42" and connection.config["region"] == "eu"
    assert "tok" not in connection.credentials_ciphertext
    # The probe.
    answer = integration_probe(tenant=world.acme, provider="acmecrm")
    assert answer == "AcmeCRM: account acme-42 in eu, token set"
    # The webhook URL reaches its view; an undeclared name, or a provider without webhooks, 404.
    delivered = Client().post(f"/hooks/acmecrm/{slug}/", b"{}", content_type="application/json")
    assert delivered.status_code == 200 and delivered.json()["acmecrm"] is True
    assert Client().post(f"/hooks/nocrm/{slug}/").status_code == 404
    assert Client().post(f"/hooks/llm/{slug}/").status_code == 404
    # The admin offers it.
    form = world.client("platform").get("/admin/integrations/integrationconnection/add/")
    assert form.status_code == 200 and 'value="acmecrm"' in form.content.decode()


def test_without_its_package_a_provider_is_nowhere(world: World) -> None:
    assert "acmecrm" not in providers()
    with pytest.raises(ValueError, match="provider must be one of shopify, whatsapp, n8n"):
        integration_connect(
            tenant=world.acme, provider="acmecrm", config={}, credentials={"api_token": "t"}
        )
    assert Client().post(f"/hooks/acmecrm/{world.acme.slug}/").status_code == 404
