"""SDK clients for the tests: the real stdio server as a subprocess, /mcp over HTTP."""

from __future__ import annotations

import sys
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.processes import ROOT


def stdio_client(env: dict[str, str], api_key: str, *, mode: str = "legacy") -> Client:
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_serve"],
        cwd=str(ROOT),
        env={**env, "SMARTEROS_API_KEY": api_key},
    )
    return Client(params, mode=mode, read_timeout_seconds=60)


def http_client(
    url: str, api_key: str | None, *, mode: str = "legacy", headers: dict[str, str] | None = None
) -> Client:
    all_headers = dict(headers or {})
    if api_key:
        all_headers["Authorization"] = f"Bearer {api_key}"
    http = httpx2.AsyncClient(headers=all_headers, timeout=60)
    return Client(
        streamable_http_client(f"{url}/mcp", http_client=http), mode=mode, read_timeout_seconds=60
    )


async def all_tools(client: Client) -> list[Any]:
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools
