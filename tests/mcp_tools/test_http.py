"""/mcp over real HTTP: bearer keys, Origin checks, both protocol eras, tenant isolation."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from tests.mcp_tools.clients import all_tools, http_client

pytestmark = pytest.mark.django_db(transaction=True)

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_lists_and_calls_with_a_bearer_key(web_server: str, make_tenant: Any, mode: str) -> None:
    acme = make_tenant("acme")

    async def main() -> None:
        async with http_client(web_server, acme.key, mode=mode) as client:
            tools = await all_tools(client)
            assert len(tools) == 25
            result = await client.call_tool("tenant_get_tenant", {})
            assert result.structured_content["slug"] == "acme"
            bad = await client.call_tool("tenant_get_metrics", {"window_minutes": 0})
            assert bad.is_error and "window_minutes" in bad.content[0].text

    anyio.run(main)


def test_missing_unknown_and_revoked_keys_are_refused(web_server: str, make_tenant: Any) -> None:
    from tenants.scope import dangerously_unscoped
    from tenants.services import api_key_revoke

    acme = make_tenant("acme")
    with dangerously_unscoped():
        api_key_revoke(api_key=acme.tenant.api_keys.get())
    for auth in (None, "Bearer sos_live_nope", f"Bearer {acme.key}", "Basic abc"):
        headers = dict(HEADERS, **({"Authorization": auth} if auth else {}))
        response = httpx.post(f"{web_server}/mcp", json=INIT, headers=headers)
        assert response.status_code == 401, auth
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "invalid API key" in response.json()["error"]["message"]


def test_foreign_origin_is_refused(web_server: str, make_tenant: Any) -> None:
    acme = make_tenant("acme")
    headers = dict(HEADERS, Authorization=f"Bearer {acme.key}")
    evil = httpx.post(
        f"{web_server}/mcp", json=INIT, headers=dict(headers, Origin="http://evil.example")
    )
    assert evil.status_code == 403
    own = httpx.post(
        f"{web_server}/mcp", json=INIT, headers=dict(headers, Origin="http://127.0.0.1:8000")
    )
    assert own.status_code == 200


def test_tenant_a_cannot_reach_tenant_b(web_server: str, make_tenant: Any) -> None:
    acme, globex = make_tenant("acme"), make_tenant("globex")

    async def main() -> None:
        async with http_client(web_server, globex.key) as client:
            await client.call_tool(
                "agent_register_mcp_server",
                {"name": "private", "transport": "http", "url": "https://upstream.example.com/mcp"},
            )
            session = await client.call_tool("agent_create_session", {"label": "globex only"})
            assert not session.is_error
        async with http_client(web_server, acme.key) as client:
            listed = await client.call_tool("agent_list_tools", {"server": "private"})
            assert (
                listed.is_error
                and "no upstream MCP server named 'private'" in listed.content[0].text
            )
            called = await client.call_tool(
                "agent_execute_tool", {"server": "private", "tool": "x"}
            )
            assert called.is_error and "acme" in called.content[0].text
            metrics = await client.call_tool("tenant_get_metrics", {})
            assert metrics.structured_content["agent_sessions"] == 0
            assert metrics.structured_content["upstream_servers"] == 0
            tenant = await client.call_tool("tenant_get_tenant", {})
            assert tenant.structured_content["slug"] == "acme"

    anyio.run(main)


def test_stateless_requests_need_no_session(web_server: str, make_tenant: Any) -> None:
    """Any replica can serve any request: a tools/call with no session id and no handshake."""
    acme = make_tenant("acme")
    headers = dict(
        HEADERS, Authorization=f"Bearer {acme.key}", **{"MCP-Protocol-Version": "2025-11-25"}
    )
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "tenant_get_tenant", "arguments": {}},
    }
    response = httpx.post(f"{web_server}/mcp", json=call, headers=headers)
    assert response.status_code == 200
    body = response.text
    payload = (
        json.loads(body.split("data: ", 1)[1].splitlines()[0])
        if body.startswith(("event", "data"))
        else json.loads(body)
    )
    assert payload["result"]["structuredContent"]["slug"] == "acme"


def test_an_idle_event_stream_ends(server_env: dict[str, str], make_tenant: Any) -> None:
    import sys
    import time

    from tests.processes import ServerProcess, free_port

    acme = make_tenant("acme")
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "uvicorn", "smarteros.asgi:application", "--port", str(port)],
        port=port,
        env={**server_env, "MCP_SSE_MAX_SECONDS": "2"},
        timeout=60,
    )
    try:
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {acme.key}", "Accept": "text/event-stream"}
        with httpx.stream(
            "GET", f"http://127.0.0.1:{port}/mcp", headers=headers, timeout=20
        ) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            response.read()  # returns only once the server ends the stream
        assert 1.5 < time.monotonic() - started < 10
        # The server is still serving after closing it.
        after = httpx.post(
            f"http://127.0.0.1:{port}/mcp",
            json=INIT,
            headers=dict(HEADERS, Authorization=f"Bearer {acme.key}"),
        )
        assert after.status_code == 200
    finally:
        server.stop()
