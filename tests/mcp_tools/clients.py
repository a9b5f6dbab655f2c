"""SDK clients for the tests: the real stdio server as a subprocess, /mcp over HTTP."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.processes import ROOT, ServerProcess, free_port


def stdio_client(
    env: dict[str, str], api_key: str, *, mode: str = "legacy", sampling_callback: Any = None
) -> Client:
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_serve"],
        cwd=str(ROOT),
        env={**env, "SMARTEROS_API_KEY": api_key},
    )
    return Client(params, mode=mode, read_timeout_seconds=60, sampling_callback=sampling_callback)


def http_client(
    url: str,
    api_key: str | None,
    *,
    mode: str = "legacy",
    headers: dict[str, str] | None = None,
    sampling_callback: Any = None,
) -> Client:
    all_headers = dict(headers or {})
    if api_key:
        all_headers["Authorization"] = f"Bearer {api_key}"
    http = httpx2.AsyncClient(headers=all_headers, timeout=60)
    return Client(
        streamable_http_client(f"{url}/mcp", http_client=http),
        mode=mode,
        read_timeout_seconds=60,
        sampling_callback=sampling_callback,
    )


async def all_tools(client: Client) -> list[Any]:
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


# The test suite's upstream MCP servers listen on loopback, which upstreams may not reach
# unless a process is told so; attacker tests leave this unset.
LOOPBACK_ALLOWED = {"EGRESS_ALLOWED_NETWORKS": "127.0.0.1/32"}
ECHO_SCRIPT = str(ROOT / "tests" / "fixtures" / "echo_mcp_server.py")


def stdio_entries(**entries: dict[str, Any]) -> dict[str, str]:
    """Environment defining platform stdio upstreams (UPSTREAM_MCP_STDIO_SERVERS)."""
    return {"UPSTREAM_MCP_STDIO_SERVERS": json.dumps(entries)}


def enable_stdio_server(tenant: Any, name: str, entry: str) -> None:
    """What a platform admin does in the admin: give `tenant` the platform stdio entry `entry`."""
    from mcp_tools.models import UpstreamServer
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        UpstreamServer.objects.create(
            tenant=tenant, name=name, transport="stdio", stdio_entry=entry
        )


def echo_http_server(*extra: str) -> ServerProcess:
    """The echo MCP server over streamable HTTP on a free loopback port (`.port`)."""
    port = free_port()
    return ServerProcess([sys.executable, ECHO_SCRIPT, "http", str(port), *extra], port=port)
