"""The stdio server (manage.py mcp_serve) as a subprocess, driven by the SDK's client."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import anyio
import pytest

from integrations.whatsapp.services import DEFAULT_BOT_PROMPT
from tests.conftest import run_manage
from tests.fixtures.deliveries import SHOPIFY_APP_SECRET, hmac_base64
from tests.mcp_tools.clients import (
    LOOPBACK_ALLOWED,
    all_tools,
    echo_http_server,
    enable_stdio_server,
    stdio_client,
    stdio_entries,
)

pytestmark = pytest.mark.django_db(transaction=True)

ECHO_SERVER = ["tests/fixtures/echo_mcp_server.py", "stdio"]


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content  # type: ignore[no-any-return]


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


def test_refuses_to_start_without_a_valid_key(server_env: dict[str, str], make_tenant: Any) -> None:
    from tenants.scope import dangerously_unscoped
    from tenants.services import api_key_revoke

    env = {k: v for k, v in server_env.items() if k != "SMARTEROS_API_KEY"}
    missing = run_manage("mcp_serve", env=env)
    assert missing.returncode == 2 and missing.stdout == ""
    assert "SMARTEROS_API_KEY" in missing.stderr
    unknown = run_manage("mcp_serve", env={**env, "SMARTEROS_API_KEY": "sos_live_unknown"})
    assert unknown.returncode == 2 and "unknown API key" in unknown.stderr
    acme = make_tenant("acme")
    with dangerously_unscoped():
        api_key_revoke(api_key=acme.tenant.api_keys.get())
    revoked = run_manage("mcp_serve", env={**env, "SMARTEROS_API_KEY": acme.key})
    assert revoked.returncode == 2 and "revoked" in revoked.stderr and revoked.stdout == ""


def test_a_running_server_stops_serving_a_key_once_it_is_revoked(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    from tenants.scope import dangerously_unscoped
    from tenants.services import api_key_revoke

    acme = make_tenant("acme")
    env = {**server_env, "MCP_KEY_RECHECK_SECONDS": "0"}

    def revoke() -> None:
        from django.db import connection

        try:
            with dangerously_unscoped():
                api_key_revoke(api_key=acme.tenant.api_keys.get())
        finally:
            connection.close()  # this helper thread's own connection

    async def main() -> None:
        async with stdio_client(env, acme.key) as client:
            assert structured(await client.call_tool("tenant_get_tenant", {}))["slug"] == "acme"
            await anyio.to_thread.run_sync(revoke)
            refused = await client.call_tool("tenant_get_tenant", {})
            assert "invalid API key" in error_text(refused)
            with pytest.raises(Exception, match="invalid API key"):
                await client.list_tools()

    anyio.run(main)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_lists_tools_in_both_protocol_eras(
    server_env: dict[str, str], make_tenant: Any, mode: str
) -> None:
    acme = make_tenant("acme")
    env = {**server_env, "MCP_TOOLS_PAGE_SIZE": "10"}

    async def main() -> list[Any]:
        async with stdio_client(env, acme.key, mode=mode) as client:
            first = await client.list_tools()
            assert len(first.tools) == 10 and first.next_cursor
            return await all_tools(client)

    tools = anyio.run(main)
    names = [t.name for t in tools]
    assert names == sorted(names) and len(names) == 25  # create_tenant needs the platform scope
    assert "tenant_create_tenant" not in names
    product = next(t for t in tools if t.name == "shopify_get_product")
    assert product.title == "Get Shopify product"
    assert product.annotations.read_only_hint is True
    assert product.output_schema["type"] == "object"


def test_a_scoped_key_lists_and_calls_only_its_operations(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    reader = make_tenant("acme", scopes=["tenant.read"])

    async def main() -> None:
        async with stdio_client(server_env, reader.key) as client:
            names = sorted(t.name for t in await all_tools(client))
            assert names == ["tenant_get_metrics", "tenant_get_tenant", "tools_search"]
            refused = await client.call_tool("tenant_update_tenant", {"name": "x"})
            # A registered tool the key may not call names the scope it lacks.
            assert "permission_denied" in error_text(refused)
            assert "needs the scope tenant.admin" in error_text(refused)

    anyio.run(main)


def test_bad_arguments_are_tool_errors_naming_field_and_rule(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    acme = make_tenant("acme")

    async def main() -> None:
        async with stdio_client(server_env, acme.key) as client:
            text = error_text(await client.call_tool("tenant_update_tenant", {"plan": "gold"}))
            assert "plan" in text and "literal_error" in text
            text = error_text(
                await client.call_tool("tenant_update_tenant", {"name": "x", "colour": "red"})
            )
            assert "colour" in text and "extra_forbidden" in text
            text = error_text(
                await client.call_tool("tenant_update_tenant", {"rate_limit_per_minute": "many"})
            )
            # Inputs are strict: a string is no integer (not one to parse).
            assert "rate_limit_per_minute" in text and "int_type" in text
            text = error_text(
                await client.call_tool("whatsapp_send_message", {"to": "0155 1234", "text": "hi"})
            )
            assert "to" in text and "string_pattern_mismatch" in text
            text = error_text(
                await client.call_tool(
                    "shopify_update_inventory",
                    {
                        "inventory_item_id": "gid://shopify/InventoryItem/1",
                        "location_id": "gid://shopify/Location/1",
                        "quantity": -1,
                    },
                )
            )
            assert "quantity" in text and "greater_than_equal" in text
            text = error_text(await client.call_tool("agent_create_session", {}))
            assert "label" in text and "missing" in text
            text = error_text(
                await client.call_tool("agent_create_session", {"label": "x" * 300_000})
            )
            assert "bytes" in text and "limit" in text
            unknown = error_text(await client.call_tool("no_such_tool", {}))
            assert unknown.startswith("Unknown tool: no_such_tool;")
            typo = error_text(await client.call_tool("tenant_get_tenat", {}))
            assert typo.startswith("Unknown tool: tenant_get_tenat; did you mean tenant_get_tenant")
            # The session survives every rejection.
            assert structured(await client.call_tool("tenant_get_tenant", {}))["slug"] == "acme"

    anyio.run(main)
    from mcp_tools.models import AgentSession
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        assert AgentSession.objects.count() == 0  # nothing executed


def test_every_operation_once(
    server_env: dict[str, str], make_tenant: Any, connect: Any, saas: Any
) -> None:
    """Each of the 25 operations, called over stdio: success, or its documented error."""
    acme = make_tenant("acme", scopes=["*", "platform.admin"])
    globex = make_tenant("globex")
    for provider in ("shopify", "whatsapp", "n8n"):
        connect(acme.tenant, provider, saas.url)
    product = "gid://shopify/Product/1000"
    upstream = echo_http_server("--require-header", "X-Api-Key=s3cret")

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with stdio_client({**server_env, **LOOPBACK_ALLOWED}, acme.key) as client:

            async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
                out[name] = structured(await client.call_tool(name, args))
                return out[name]

            await call("tenant_get_tenant", {})
            await call(
                "tenant_update_tenant",
                {"name": "Acme Shop", "contact_email": "ops@acme.example.com"},
            )
            await call("tenant_provision_resources", {})
            await call("tenant_get_metrics", {"window_minutes": 60})
            await call(
                "tenant_create_tenant", {"slug": "newshop", "name": "New Shop", "plan": "pro"}
            )
            await call(
                "agent_create_session", {"label": "test run", "metadata": {"agent": "pytest"}}
            )
            await call(
                "agent_register_mcp_server",
                {
                    "name": "echo",
                    "transport": "http",
                    "url": f"http://127.0.0.1:{upstream.port}/mcp",
                    "credentials": {"X-Api-Key": "s3cret"},
                },
            )
            await call("agent_list_tools", {"server": "echo"})
            await call(
                "agent_execute_tool",
                {"server": "echo", "tool": "echo", "arguments": {"text": "hello"}},
            )
            await call("agent_get_telemetry", {"window_minutes": 60})
            await call("shopify_get_product", {"product_id": product})
            await call(
                "shopify_update_inventory",
                {
                    "inventory_item_id": "gid://shopify/InventoryItem/9000",
                    "location_id": "gid://shopify/Location/1",
                    "quantity": 5,
                },
            )
            await call(
                "shopify_create_order",
                {
                    "line_items": [
                        {"variant_id": "gid://shopify/ProductVariant/5000", "quantity": 2}
                    ],
                    "email": "c@example.com",
                },
            )
            await call("shopify_sync_products", {})
            order = json.dumps({"id": 777, "email": "c@example.com"})
            await call(
                "shopify_process_webhook",
                {
                    "topic": "orders/create",
                    "webhook_id": "wh-1",
                    "shop_domain": "acme.myshopify.com",
                    "hmac_sha256": hmac_base64(SHOPIFY_APP_SECRET, order.encode()),
                    "raw_body": order,
                },
            )
            await call(
                "whatsapp_process_inbound",
                {
                    "from_phone": "+14155550123",
                    "text": "Hi, is it in stock?",
                    "message_id": "wamid.in.1",
                },
            )
            await call("whatsapp_create_bot_response", {"phone": "+14155550123"})
            await call("whatsapp_send_message", {"to": "+14155550123", "text": "Order shipped"})
            await call(
                "whatsapp_send_template",
                {"to": "+14155550123", "name": "hello_world", "language": "en_US"},
            )
            await call("whatsapp_get_conversation", {"phone": "+14155550123"})
            await call("n8n_list_workflows", {})
            await call("n8n_get_execution", {"execution_id": "42"})
            await call(
                "n8n_trigger_workflow", {"webhook_path": "order-created", "payload": {"order": 1}}
            )
            await call(
                "n8n_create_trigger", {"topic": "shopify.webhooks", "webhook_path": "order-created"}
            )
            order_effect = out["shopify_create_order"]["effect"]["effect_id"]
            await call("agent_get_effect", {"effect_id": order_effect})
        async with stdio_client(server_env, globex.key) as client:
            for name, args in [
                ("shopify_get_product", {"product_id": product}),
                ("whatsapp_send_message", {"to": "+14155550123", "text": "hi"}),
                ("n8n_list_workflows", {}),
            ]:
                text = error_text(await client.call_tool(name, args))
                provider = name.split("_")[0]
                assert f"{provider} is not connected for tenant globex" in text
                out[f"globex:{name}"] = text
        return out

    try:
        out = anyio.run(main)
    finally:
        upstream.stop()
    assert len({name for name in out if ":" not in name}) == 25
    assert out["tenant_update_tenant"]["name"] == "Acme Shop"
    assert [s["step"] for s in out["tenant_provision_resources"]["steps"]] == [
        "kafka_topics",
        "vault_key",
        "first_api_key",
    ]
    assert out["tenant_create_tenant"] == {
        **out["tenant_create_tenant"],
        "slug": "newshop",
        "status": "pending",
    }
    assert out["agent_execute_tool"] == {
        "server": "echo",
        "tool": "echo",
        "is_error": False,
        "text": "hello",
        "structured": {"text": "hello"},
    }
    assert {t["name"] for t in out["agent_list_tools"]["tools"]} == {
        "echo",
        "slow",
        "env",
        "broken",
    }
    assert out["shopify_get_product"]["variants"][0]["sku"] == "SKU-0"
    # Outside effects happen after commit; a quick one is done by the time the call answers.
    assert out["shopify_process_webhook"]["accepted"] is True
    assert out["shopify_create_order"] == {
        **out["shopify_create_order"],
        "order_id": "gid://shopify/Order/777",
        "name": "#1001",
        "total": "39.80",
        "currency": "EUR",
    }
    assert out["shopify_create_order"]["effect"]["state"] == "done"
    assert out["agent_get_effect"] == {
        **out["agent_get_effect"],
        "kind": "shopify.create_order",
        "state": "done",
        "attempts": 1,
    }
    assert out["agent_get_effect"]["result"]["order_id"] == "gid://shopify/Order/777"
    assert out["shopify_sync_products"] == {
        **out["shopify_sync_products"],
        "synced": 7,
        "complete": True,
        "bulk_operation_id": "gid://shopify/BulkOperation/1",
    }
    assert out["shopify_create_order"]["legacy_id"] == "820982911946154509"  # past 2^53, exact
    # The LLM stand-in counts words: the bot's prompt and the customer's message.
    prompt_words = len(DEFAULT_BOT_PROMPT.split()) + 5  # "Hi, is it in stock?"
    assert out["whatsapp_create_bot_response"]["tokens_in"] == prompt_words
    assert out["whatsapp_create_bot_response"]["sent"] is True
    assert out["whatsapp_send_template"]["effect"]["state"] == "done"
    assert [m["direction"] for m in out["whatsapp_get_conversation"]["messages"]] == [
        "inbound",
        "outbound",
        "outbound",
        "outbound",  # the template
    ]
    assert out["n8n_get_execution"]["status"] == "success"
    assert out["n8n_trigger_workflow"]["response"] == {"received": True, "path": "order-created"}
    assert out["tenant_get_metrics"]["active_api_keys"] == 1


def test_a_platform_stdio_server_gets_its_own_environment_only(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    acme = make_tenant("acme")
    enable_stdio_server(acme.tenant, "echo", "echo")
    env = {
        **server_env,
        **stdio_entries(
            echo={"command": sys.executable, "args": ECHO_SERVER, "env": {"ECHO_SECRET": "s3"}}
        ),
    }

    async def main() -> None:
        async with stdio_client(env, acme.key) as client:

            async def env_var(name: str) -> str:
                result = await client.call_tool(
                    "agent_execute_tool",
                    {"server": "echo", "tool": "env", "arguments": {"name": name}},
                )
                return str(structured(result)["text"])

            assert await env_var("ECHO_SECRET") == "s3"
            assert await env_var("DATABASE_URL") == ""

    anyio.run(main)


def test_garbage_batches_and_oversized_lines_get_errors_and_the_server_stays_up(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    import secrets
    import subprocess
    import threading

    from tests.processes import ROOT

    # Its limit is spent by the four refused lines: refusals count like calls.
    acme = make_tenant(f"raw{secrets.token_hex(4)}", rate_limit=4)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "mcp_serve"],
        cwd=ROOT,
        env={**server_env, "SMARTEROS_API_KEY": acme.key, "MCP_STDIO_MAX_LINE_BYTES": "2048"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdin is not None and server.stdout is not None
    answers: list[dict[str, Any]] = []

    def read() -> None:
        assert server.stdout is not None
        for raw in server.stdout:
            answers.append(json.loads(raw))

    threading.Thread(target=read, daemon=True).start()
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    lines = [
        b"this is not json\n",
        b'[{"jsonrpc": "2.0", "id": 2, "method": "ping"}]\n',
        b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": "' + b"x" * 5000 + b'"}\n',
        b'{"id": 4}\n',
        json.dumps(initialize).encode() + b"\n",
        b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n',
        b'{"jsonrpc": "2.0", "id": 5, "method": "tools/call", '
        b'"params": {"name": "tenant_get_tenant", "arguments": {}}}\n',
    ]
    try:
        for line in lines:
            server.stdin.write(line)
            server.stdin.flush()
        deadline = time.monotonic() + 30
        while len(answers) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    assert [(a.get("id"), a.get("error", {}).get("code")) for a in answers] == [
        (None, -32700),
        (None, -32600),
        (None, -32600),
        (4, -32600),
        (1, None),
        (5, None),
    ]
    assert answers[4]["result"]["serverInfo"]["name"] == "smarteros"
    assert answers[5]["result"]["isError"] is True
    assert "rate limit of 4 requests per minute" in answers[5]["result"]["content"][0]["text"]
    assert server.returncode == 0
