"""The integrations page connects the LLM like any provider, shows which secrets are set (never
their values), and disconnects a provider after its name is typed: admins only, audited."""

from __future__ import annotations

import pytest

from integrations.models import IntegrationConnection
from tenants.models import AuditEvent
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


def connection(world: World, provider: str) -> IntegrationConnection | None:
    with dangerously_unscoped():
        return IntegrationConnection.objects.filter(tenant=world.acme, provider=provider).first()


def test_the_llm_is_connected_in_the_console_and_its_secret_shown_as_set(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/integrations/"
    admin = world.client("admin")
    form = {
        "provider": "llm",
        "llm-provider": "anthropic",
        "llm-model": "claude-test",
        "llm-max_tokens": "400",
        "llm-api_key": "sk-ant-console-key",
    }
    assert admin.post(url, form).status_code == 302
    saved = connection(world, "llm")
    assert saved is not None and saved.config["model"] == "claude-test"
    page = admin.get(url).content.decode()
    assert "sk-ant-console-key" not in page
    assert 'id="secrets-llm">Secrets: <code>api_key</code> set' in page
    # A setting the LLM cannot work with is refused on save, naming it.
    bad = admin.post(url, {**form, "llm-max_tokens": "many"})
    assert bad.status_code == 400 and "max_tokens must be a whole number" in bad.content.decode()
    # ...and a reply budget above what the model is documented to write, naming the limit.
    too_much = admin.post(
        url, {**form, "llm-model": "claude-haiku-4-5", "llm-max_tokens": "64001"}
    ).content.decode()
    assert "max_tokens must be between 1 and 64000, the most output tokens the model " in too_much


def test_disconnect_needs_the_typed_name_and_an_admin(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/integrations/"
    admin = world.client("admin")
    shop = f"{world.acme.slug}.myshopify.com"
    connect = {
        "provider": "shopify",
        "shopify-shop_domain": shop,
        "shopify-access_token": "shpat_x",
    }
    assert admin.post(url, connect).status_code == 302
    page = admin.get(url).content.decode()
    assert "<code>access_token</code> set, <code>app_secret</code> <span" in page  # not set

    disconnect = f"{url}shopify/disconnect/"
    viewer = world.client("viewer")
    assert viewer.post(disconnect, {"confirm": "shopify"}).status_code == 403
    unconfirmed = admin.post(disconnect, {"confirm": "shop"})
    assert (
        unconfirmed.status_code == 400
        and "Type shopify to confirm." in unconfirmed.content.decode()
    )
    assert connection(world, "shopify") is not None

    assert admin.post(disconnect, {"confirm": "shopify"}).status_code == 302
    assert connection(world, "shopify") is None
    with dangerously_unscoped():
        audit = AuditEvent.objects.filter(action="integration.disconnect", tenant=world.acme)
        assert [a.target for a in audit] == ["integration:shopify"]
    assert admin.post(f"{url}nosuch/disconnect/", {"confirm": "nosuch"}).status_code == 404
