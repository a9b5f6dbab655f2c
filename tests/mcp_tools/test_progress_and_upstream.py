"""Progress and cancellation of long calls; execute_tool against real upstream MCP servers."""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import pytest

from tests.mcp_tools.clients import (
    ECHO_SCRIPT,
    LOOPBACK_ALLOWED,
    echo_http_server,
    enable_stdio_server,
    stdio_client,
    stdio_entries,
)
from tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def bulk_polls(saas: Any) -> int:
    return sum(
        1
        for _, path, _, body in saas.state.requests
        if body and "query BulkOperation" in body.get("query", "")
    )


SYNC_ENV = {"SHOPIFY_SYNC_BATCH_SIZE": "2", "SHOPIFY_BULK_POLL_SECONDS": "0.05"}


def test_sync_products_reports_progress(
    server_env: dict[str, str], make_tenant: Any, connect: Any, saas: Any
) -> None:
    acme = make_tenant("acme")
    connect(acme.tenant, "shopify", saas.url)
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async def main() -> Any:
        async with stdio_client({**server_env, **SYNC_ENV}, acme.key) as client:
            return await client.call_tool(
                "shopify_sync_products", {}, progress_callback=on_progress
            )

    result = anyio.run(main)
    assert result.structured_content["synced"] == 7
    assert result.structured_content["complete"] is True
    # Shopify exporting, then each batch of two written, then the whole catalogue.
    assert [u[0] for u in updates] == [0, 2, 4, 6, 7]
    assert updates[0][2] == "Shopify is exporting the catalogue (RUNNING)"
    assert updates[-1][1] == 7 and updates[-1][2] == "7 products written to shopify.products"


def test_cancellation_stops_the_sync_and_the_session_survives(
    server_env: dict[str, str], make_tenant: Any, connect: Any, saas: Any
) -> None:
    acme = make_tenant("acme")
    connect(acme.tenant, "shopify", saas.url)
    saas.state.shopify.bulk_polls = 10_000  # Shopify takes its time exporting

    async def main() -> dict[str, Any]:
        async with stdio_client({**server_env, **SYNC_ENV}, acme.key) as client:
            with anyio.move_on_after(1.2):
                await client.call_tool("shopify_sync_products", {})
                raise AssertionError("the call should have been cancelled")
            await anyio.sleep(1.0)
            after = await client.call_tool("tenant_get_tenant", {})
            return after.structured_content  # type: ignore[no-any-return]

    assert anyio.run(main)["slug"] == "acme"
    polls = bulk_polls(saas)
    time.sleep(1.0)
    assert 0 < bulk_polls(saas) == polls  # stopped polling, and stays stopped


def test_execute_tool_over_http_with_header_credentials(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    upstream = echo_http_server("--require-header", "X-Api-Key=upstream-secret")
    port = upstream.port
    acme = make_tenant("acme")
    try:

        async def main() -> tuple[Any, Any]:
            async with stdio_client({**server_env, **LOOPBACK_ALLOWED}, acme.key) as client:
                for name, credentials in (
                    ("good", {"X-Api-Key": "upstream-secret"}),
                    ("bad", {"X-Api-Key": "wrong"}),
                ):
                    registered = await client.call_tool(
                        "agent_register_mcp_server",
                        {
                            "name": name,
                            "transport": "http",
                            "url": f"http://127.0.0.1:{port}/mcp",
                            "credentials": credentials,
                        },
                    )
                    assert not registered.is_error, registered.content[0].text
                good = await client.call_tool(
                    "agent_execute_tool",
                    {"server": "good", "tool": "echo", "arguments": {"text": "over http"}},
                )
                bad = await client.call_tool(
                    "agent_execute_tool",
                    {"server": "bad", "tool": "echo", "arguments": {"text": "x"}},
                )
                return good, bad

        good, bad = anyio.run(main)
    finally:
        upstream.stop()
    assert good.structured_content["text"] == "over http"
    assert bad.is_error and "upstream MCP server 'bad' failed" in bad.content[0].text


def test_upstream_down_slow_or_garbage_is_a_clear_error(
    server_env: dict[str, str], make_tenant: Any, saas: Any
) -> None:
    acme = make_tenant("acme")
    echo = [ECHO_SCRIPT, "stdio"]
    env = {
        **server_env,
        **LOOPBACK_ALLOWED,
        **stdio_entries(
            echo={"command": sys.executable, "args": echo},
            crashing={"command": sys.executable, "args": ["-c", "print('garbage')"]},
        ),
        "UPSTREAM_MCP_TIMEOUT_SECONDS": "2",
    }
    # stdio upstreams are platform-defined; a platform admin enabled these two for acme.
    enable_stdio_server(acme.tenant, "slow", "echo")
    enable_stdio_server(acme.tenant, "crashing", "crashing")

    async def main() -> dict[str, Any]:
        results: dict[str, Any] = {}
        async with stdio_client(env, acme.key) as client:
            registered = {
                "down": {"transport": "http", "url": f"http://127.0.0.1:{free_port()}/mcp"},
                "garbage": {"transport": "http", "url": f"{saas.url}/not-mcp"},
            }
            for name, spec in registered.items():
                assert not (
                    await client.call_tool("agent_register_mcp_server", {"name": name, **spec})
                ).is_error
            for name in ("down", "garbage", "slow", "crashing"):
                tool, args = (
                    ("slow", {"seconds": 30}) if name == "slow" else ("echo", {"text": "x"})
                )
                started = time.monotonic()
                results[name] = await client.call_tool(
                    "agent_execute_tool", {"server": name, "tool": tool, "arguments": args}
                )
                results[name + ":seconds"] = time.monotonic() - started
            broken = await client.call_tool(
                "agent_execute_tool", {"server": "slow", "tool": "broken"}
            )
            results["broken"] = broken
            results["alive"] = await client.call_tool("tenant_get_tenant", {})
        return results

    results = anyio.run(main)
    for name in ("down", "garbage", "slow", "crashing"):
        assert results[name].is_error, name
        assert f"upstream MCP server '{name}'" in results[name].content[0].text
        assert results[name + ":seconds"] < 10, name
    assert "within 2s" in results["slow"].content[0].text
    # An upstream tool's own error is a successful call that reports is_error.
    assert results["broken"].structured_content["is_error"] is True
    assert results["broken"].structured_content["text"] == "it broke"
    assert results["alive"].structured_content["slug"] == "acme"
