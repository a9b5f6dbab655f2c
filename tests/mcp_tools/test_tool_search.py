"""`tools_search`: tools found by what they do, the tenant's own most used (and successful) first,
over REST like any operation; every key may search, and finds only what it may call."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from telemetry.schema import clickhouse_migrate
from tests.tenants.console.conftest import calls_insert

pytestmark = pytest.mark.django_db(transaction=True)


def search(url: str, key: str, query: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/tools/search",
        json={"query": query, **extra},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [tool["name"] for tool in answer.json()["tools"]]


def test_the_tenants_most_used_matching_tools_come_first(web_server: str, make_tenant: Any) -> None:
    clickhouse_migrate()
    shop, other = (make_tenant(f"ts{secrets.token_hex(3)}") for _ in range(2))
    # shop sends templates far more than plain messages, and its plain sends mostly fail.
    calls_insert(shop.tenant.slug, operation="whatsapp_send_template", ok=9, errors=0)
    calls_insert(shop.tenant.slug, operation="whatsapp_send_message", ok=2, errors=6)
    # The other tenant's usage ranks nothing of shop's.
    calls_insert(other.tenant.slug, operation="whatsapp_get_conversation", ok=50, errors=0)

    answer = search(web_server, shop.key, "whatsapp message")
    found = names(answer)
    assert found[:2] == ["whatsapp_send_template", "whatsapp_send_message"], found
    assert set(found) >= {"whatsapp_get_conversation", "whatsapp_process_inbound"}
    body = answer.json()
    assert body["ranking"] == "usage" and body["usage_window_days"] == 30
    first, second = body["tools"][0], body["tools"][1]
    assert (first["calls"], first["success_rate"]) == (9, 1.0)
    assert (second["calls"], second["success_rate"]) == (8, 0.25)
    unused = next(t for t in body["tools"] if t["name"] == "whatsapp_get_conversation")
    assert (unused["calls"], unused["success_rate"]) == (0, None)

    # The other tenant, with its own usage, gets its own order.
    assert names(search(web_server, other.key, "whatsapp message"))[0] == (
        "whatsapp_get_conversation"
    )
    assert names(search(web_server, shop.key, "whatsapp", limit=2)) == found[:2]
    assert names(search(web_server, shop.key, "zebra quantum")) == []


def test_every_key_may_search_and_finds_only_what_it_may_call(
    web_server: str, make_tenant: Any
) -> None:
    narrow = make_tenant(f"ts{secrets.token_hex(3)}", scopes=["shopify.read"])
    found = names(search(web_server, narrow.key, "product order inventory whatsapp tenant"))
    assert found and all(name.startswith(("shopify_", "tools_")) for name in found), found
    assert "shopify_update_inventory" not in found  # shopify.write, not granted
    assert "tenant_create_tenant" not in found  # a platform tool

    refused = search(web_server, narrow.key, "")
    assert refused.status_code == 422 and "query" in refused.text
    assert search(web_server, narrow.key, "x" * 201).status_code == 422
    assert search(web_server, narrow.key, "shop", limit=0).status_code == 422


def listed(url: str, key: str, query: str = "") -> list[str]:
    answer = httpx.post(
        f"{url}/mcp{query}",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": "2025-11-25",
            "Authorization": f"Bearer {key}",
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body = answer.text
    if body.startswith(("event", "data")):
        body = body.split("data: ", 1)[1].splitlines()[0]
    return [tool["name"] for tool in json.loads(body)["result"]["tools"]]


def test_small_context_clients_list_the_search_tool_and_the_most_used(
    web_server: str, make_tenant: Any
) -> None:
    clickhouse_migrate()
    shop = make_tenant(f"ts{secrets.token_hex(3)}")
    assert listed(web_server, shop.key, "?tools=top") == ["tools_search"]  # nothing used yet
    calls_insert(shop.tenant.slug, operation="tenant_get_tenant", ok=5, errors=0)
    calls_insert(shop.tenant.slug, operation="whatsapp_send_message", ok=2, errors=9)
    calls_insert(shop.tenant.slug, operation="n8n_list_workflows", ok=0, errors=3)  # never worked
    assert listed(web_server, shop.key, "?tools=top") == [
        "tools_search",
        "tenant_get_tenant",
        "whatsapp_send_message",
    ]
    assert len(listed(web_server, shop.key)) == 25  # without it: every tool the key may call
