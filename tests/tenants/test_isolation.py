"""Three tenants; tenant A's credentials against tenant B's resources on every surface: zero leaks."""

from __future__ import annotations

import json
import secrets
from typing import Any

import anyio
import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.mcp_tools.clients import http_client, stdio_client

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
    assert client.get(f"/admin/tenants/apikey/{foreign_key.pk}/change/").status_code in (302, 404)
    sessions_page = client.get("/admin/mcp_tools/agentsession/").content.decode()
    assert "session of acme" in sessions_page and "session of globex" not in sessions_page
    assert client.get(
        f"/admin/mcp_tools/agentsession/{foreign_session.pk}/change/"
    ).status_code in (302, 404)


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
    """A webhook's credential is its signing secret: acme's secret opens nothing of globex's."""
    import base64
    import hashlib
    import hmac

    from integrations.services import integration_connect
    from smarteros.models import OutboxEvent
    from tenants.scope import dangerously_unscoped

    for slug in SLUGS:
        integration_connect(
            tenant=world[slug].tenant,
            provider="shopify",
            config={"shop_domain": f"{slug}.myshopify.com"},
            credentials={"access_token": "shpat_" + "0" * 32, "app_secret": f"secret-of-{slug}"},
        )
    body = json.dumps({"id": 1, "email": "c@example.com"}).encode()

    def post(target: str, secret: str, webhook_id: str) -> int:
        signature = base64.b64encode(
            hmac.new(secret.encode(), body, hashlib.sha256).digest()
        ).decode()
        return (
            Client()
            .post(
                f"/hooks/shopify/{target}/",
                body,
                content_type="application/json",
                HTTP_X_SHOPIFY_HMAC_SHA256=signature,
                HTTP_X_SHOPIFY_TOPIC="orders/create",
                HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id,
            )
            .status_code
        )

    def queued(slug: str) -> int:
        with dangerously_unscoped():
            return OutboxEvent.objects.filter(topic=f"{slug}.shopify.webhooks").count()

    for attacker in SLUGS:
        for victim in SLUGS:
            if victim != attacker:
                assert post(victim, f"secret-of-{attacker}", f"{attacker}-{victim}") == 401
    assert [queued(slug) for slug in SLUGS] == [0, 0, 0]
    # A fresh delivery id: Shopify's retry dedupe in Redis outlives the test database.
    assert post("acme", "secret-of-acme", f"own-{secrets.token_hex(4)}") == 200
    assert queued("acme") == 1
