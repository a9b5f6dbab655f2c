"""Three tenants; tenant A's credentials against tenant B's resources on every surface: zero leaks."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.mcp_tools.clients import http_client, stdio_client
from tests.mcp_tools.test_oauth import base  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)

SLUGS = ("acme", "globex", "initech")


@pytest.fixture
def world(make_tenant: Any, connect: Any, saas: Any) -> dict[str, Any]:
    """Each tenant with a key, an upstream server, a session, WhatsApp history and Shopify."""
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    world = {}
    for index, slug in enumerate(SLUGS):
        tk = make_tenant(slug)
        connect(tk.tenant, "whatsapp", saas.url)
        principal = principal_from_api_key(tk.key)
        for name, args in (
            (
                "agent_register_mcp_server",
                {
                    "name": f"private-{slug}",
                    "transport": "http",
                    "url": f"https://upstream.example.com/{slug}",
                },
            ),
            ("agent_create_session", {"label": f"session of {slug}"}),
            (
                "whatsapp_process_inbound",
                {
                    "from_phone": f"+1415555010{index}",
                    "text": f"secret of {slug}",
                    "message_id": f"wamid.{slug}",
                },
            ),
        ):
            assert execute(name, args, principal=principal, surface="rest").ok
        world[slug] = tk
    return world


def probes(victim: str, victim_phone: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("agent_list_tools", {"server": f"private-{victim}"}),
        ("agent_execute_tool", {"server": f"private-{victim}", "tool": "x"}),
        ("whatsapp_get_conversation", {"phone": victim_phone}),
        ("tenant_get_metrics", {}),
        ("tenant_get_tenant", {}),
    ]


def assert_no_leak(attacker: str, victim: str, text: str) -> None:
    assert f"secret of {victim}" not in text
    assert f"session of {victim}" not in text
    assert f'"{victim}"' not in text or attacker == victim


def test_mcp_stdio_http_and_rest(
    world: dict[str, Any], server_env: dict[str, str], web_server: str
) -> None:
    async def over_mcp(client_factory: Any) -> list[str]:
        texts = []
        for attacker in SLUGS:
            async with client_factory(world[attacker].key) as client:
                for victim_index, victim in enumerate(SLUGS):
                    if victim == attacker:
                        continue
                    for name, args in probes(victim, f"+1415555010{victim_index}"):
                        result = await client.call_tool(name, args)
                        text = result.content[0].text
                        assert_no_leak(attacker, victim, text)
                        texts.append(text)
        return texts

    stdio_texts = anyio.run(over_mcp, lambda key: stdio_client(server_env, key))
    http_texts = anyio.run(over_mcp, lambda key: http_client(web_server, key))
    assert any(
        "no upstream MCP server named 'private-globex'" in t for t in stdio_texts + http_texts
    )
    for attacker in SLUGS:
        for victim_index, victim in enumerate(SLUGS):
            if victim == attacker:
                continue
            for name, args in probes(victim, f"+1415555010{victim_index}"):
                service, action = name.split("_", 1)
                response = httpx.post(
                    f"{web_server}/api/v1/{service}/{action}",
                    json=args,
                    headers={"Authorization": f"Bearer {world[attacker].key}"},
                )
                assert_no_leak(attacker, victim, response.text)
            conversation = httpx.post(
                f"{web_server}/api/v1/whatsapp/get_conversation",
                json={"phone": f"+1415555010{victim_index}"},
                headers={"Authorization": f"Bearer {world[attacker].key}"},
            )
            assert conversation.json()["messages"] == []


def test_admin_tenant_admin_sees_only_their_tenant(world: dict[str, Any]) -> None:
    from mcp_tools.models import AgentSession
    from tenants.models import ApiKey, Membership, Tenant
    from tenants.scope import dangerously_unscoped

    user = get_user_model().objects.create_user(
        "acme-admin", password="pw-acme-admin-1", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_apikey", "view_agentsession"])
    )
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=Tenant.objects.get(slug="acme"), role="admin")
        foreign_key = ApiKey.objects.get(tenant__slug="globex")
        foreign_session = AgentSession.objects.get(tenant__slug="globex")
    client = Client()
    assert client.login(username="acme-admin", password="pw-acme-admin-1")
    keys_page = client.get("/admin/tenants/apikey/").content.decode()
    assert "acme" in keys_page and "globex" not in keys_page and "initech" not in keys_page
    assert client.get(f"/admin/tenants/apikey/{foreign_key.pk}/change/").status_code == 403
    sessions_page = client.get("/admin/mcp_tools/agentsession/").content.decode()
    assert "session of acme" in sessions_page and "session of globex" not in sessions_page
    assert (
        client.get(f"/admin/mcp_tools/agentsession/{foreign_session.pk}/change/").status_code == 403
    )


def test_console_shows_operators_only_their_tenants(world: dict[str, Any]) -> None:
    from tenants.models import Membership, Tenant
    from tenants.scope import dangerously_unscoped

    user = get_user_model().objects.create_user("globex-viewer", password="pw-globex-viewer-1")
    with dangerously_unscoped():
        Membership.objects.create(
            user=user, tenant=Tenant.objects.get(slug="globex"), role="viewer"
        )
    client = Client()
    assert client.login(username="globex-viewer", password="pw-globex-viewer-1")
    page = client.get("/").content.decode()
    assert "globex" in page and "acme" not in page and "initech" not in page


def test_webhooks_signed_with_another_tenants_secret_are_refused(world: dict[str, Any]) -> None:
    """A webhook's credential is its signing secret: acme's secret opens nothing of globex's,
    even when the delivery claims globex's own shop."""
    from integrations.services import integration_connect
    from smarteros.models import OutboxEvent
    from tenants.scope import dangerously_unscoped
    from tests.fixtures.deliveries import post as deliver
    from tests.fixtures.deliveries import shopify_headers

    for slug in SLUGS:
        integration_connect(
            tenant=world[slug].tenant,
            provider="shopify",
            config={"shop_domain": f"{slug}.myshopify.com"},
            credentials={"access_token": "shpat_" + "0" * 32, "app_secret": f"secret-of-{slug}"},
        )
    body = json.dumps({"id": 1, "email": "c@example.com"}).encode()

    def post(target: str, secret: str, shop: str) -> int:
        headers = shopify_headers(body, shop_domain=f"{shop}.myshopify.com", secret=secret)
        return deliver(f"/hooks/shopify/{target}/", body, headers).status_code

    def queued(slug: str) -> int:
        with dangerously_unscoped():
            return OutboxEvent.objects.filter(topic=f"{slug}.shopify.webhooks").count()

    for attacker in SLUGS:
        for victim in SLUGS:
            if victim != attacker:
                # Claiming the victim's shop, signed with the attacker's own secret.
                assert post(victim, f"secret-of-{attacker}", victim) == 401
                # The attacker's own genuine delivery, posted to the victim's URL: the
                # signature is checked first, against the victim's secret.
                assert post(victim, f"secret-of-{attacker}", attacker) == 401
    assert [queued(slug) for slug in SLUGS] == [0, 0, 0]
    assert post("acme", "secret-of-acme", "acme") == 200
    assert queued("acme") == 1


def test_webhooks_for_another_tenants_account_are_refused_even_with_a_shared_secret(
    world: dict[str, Any],
) -> None:
    """One platform-wide Shopify app (and one Meta app) signs every tenant's deliveries alike:
    only the shop domain and the phone number id tell them apart, and they are compared."""
    from integrations.models import WebhookDelivery, WhatsAppMessage
    from integrations.services import integration_connect
    from smarteros.models import OutboxEvent
    from tenants.scope import dangerously_unscoped
    from tests.fixtures.deliveries import (
        META_APP_SECRET,
        dumps,
        meta_headers,
        post,
        shopify_headers,
        shopify_order,
        whatsapp_text,
    )

    for index, slug in enumerate(SLUGS):
        tenant = world[slug].tenant
        integration_connect(
            tenant=tenant,
            provider="shopify",
            config={"shop_domain": f"{slug}.myshopify.com"},
            credentials={"access_token": "shpat_" + "0" * 32, "app_secret": "one-platform-app"},
        )
        integration_connect(
            tenant=tenant,
            provider="whatsapp",
            config={"phone_number_id": f"10654035224292{index}"},
            credentials={"access_token": "EAAtoken", "app_secret": META_APP_SECRET},
        )
    with dangerously_unscoped():
        before = (
            OutboxEvent.objects.count(),
            WhatsAppMessage.objects.count(),
            WebhookDelivery.objects.count(),
        )

    order = dumps(shopify_order())
    globex_order = shopify_headers(
        order, shop_domain="globex.myshopify.com", secret="one-platform-app"
    )
    refused = post("/hooks/shopify/acme/", order, globex_order)
    assert refused.status_code == 403
    assert "X-Shopify-Shop-Domain" in refused.json()["message"]

    globex_message = dumps(whatsapp_text(phone_number_id="106540352242921", text="for globex"))
    refused = post("/hooks/whatsapp/acme/", globex_message, meta_headers(globex_message))
    assert refused.status_code == 403
    assert "phone_number_id" in refused.json()["message"]

    with dangerously_unscoped():
        assert (
            OutboxEvent.objects.count(),
            WhatsAppMessage.objects.count(),
            WebhookDelivery.objects.count(),
        ) == before
    # The same deliveries at the URL of the tenant they are for are accepted.
    assert post("/hooks/shopify/globex/", order, globex_order).json()["accepted"]
    accepted = post("/hooks/whatsapp/globex/", globex_message, meta_headers(globex_message))
    assert accepted.json()["messages"] == 1


def test_a_tenant_key_cannot_reach_admin_or_platform_operations_or_raise_its_limits(
    world: dict[str, Any], make_tenant: Any, web_server: str
) -> None:
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    star = make_tenant("starkey", scopes=["*"])
    for path, body in (
        ("agent/register_mcp_server", {"name": "x", "transport": "http", "url": "https://e.x/"}),
        ("tenant/update_tenant", {"name": "Mine"}),
        ("tenant/provision_resources", {}),
        ("tenant/create_tenant", {"slug": "stolen", "name": "Stolen"}),
    ):
        response = httpx.post(
            f"{web_server}/api/v1/{path}",
            json=body,
            headers={"Authorization": f"Bearer {star.key}"},
        )
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "permission_denied"
    owner = world["acme"]  # the tenant's own admin key: tenant.admin, not platform.admin
    for field, value in (("plan", "enterprise"), ("rate_limit_per_minute", 1_000_000)):
        response = httpx.post(
            f"{web_server}/api/v1/tenant/update_tenant",
            json={field: value},
            headers={"Authorization": f"Bearer {owner.key}"},
        )
        assert response.status_code == 403 and field in response.json()["message"]
    with dangerously_unscoped():
        acme = Tenant.objects.get(slug="acme")
        assert not Tenant.objects.filter(slug="stolen").exists()
    assert (acme.plan, acme.rate_limit_per_minute) == ("free", None)


def test_an_oauth_token_reaches_no_other_tenant(world: dict[str, Any], base: str) -> None:  # noqa: F811
    """The same probes with an OAuth access token (a person's consent for acme, scope `*`),
    over /mcp and REST: the token acts for acme only, as an API key does."""
    from tests.mcp_tools.test_oauth import _call, _person, _result, _token_for

    _person("isolation-ann", world["acme"].tenant, "admin")
    token = _token_for(base, "isolation-ann", "acme", ["*"])["access_token"]
    for victim_index, victim in enumerate(SLUGS[1:], start=1):
        for name, args in probes(victim, f"+1415555010{victim_index}"):
            text = json.dumps(_result(_call(base, token, name, args)))
            assert_no_leak("acme", victim, text)
            service, action = name.split("_", 1)
            response = httpx.post(
                f"{base}/api/v1/{service}/{action}",
                json=args,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert_no_leak("acme", victim, response.text)
    own = _result(_call(base, token, "tenant_get_tenant"))["structuredContent"]
    assert own["slug"] == "acme"
