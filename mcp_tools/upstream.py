"""Calling tools on a tenant's upstream MCP servers through the SDK's client."""

from __future__ import annotations

import os
from typing import Any

import anyio
import httpx2
import mcp_types as types
from django.conf import settings
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mcp_tools.errors import UpstreamError
from mcp_tools.models import UpstreamServer
from tenants.secrets import secret_decrypt


def credentials_purpose(server_name: str) -> str:
    return f"upstream-mcp:{server_name}"


def _client_for(server: UpstreamServer) -> Client:
    credentials: dict[str, str] = {}
    if server.credentials_ciphertext:
        credentials = secret_decrypt(
            slug=server.tenant.slug,
            purpose=credentials_purpose(server.name),
            ciphertext=server.credentials_ciphertext,
        )
    if server.transport == UpstreamServer.Transport.HTTP:
        http = httpx2.AsyncClient(
            headers=credentials, timeout=settings.UPSTREAM_MCP_TIMEOUT_SECONDS
        )
        return Client(
            streamable_http_client(server.url, http_client=http),
            mode="legacy",
            read_timeout_seconds=settings.UPSTREAM_MCP_TIMEOUT_SECONDS,
        )
    # Only PATH and the server's own credentials: the platform's environment stays private.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **credentials}
    params = StdioServerParameters(command=server.command, args=list(server.args), env=env)
    return Client(params, mode="legacy", read_timeout_seconds=settings.UPSTREAM_MCP_TIMEOUT_SECONDS)


async def _with_client(server: UpstreamServer, action: str, fn: Any) -> Any:
    timeout = settings.UPSTREAM_MCP_TIMEOUT_SECONDS
    try:
        with anyio.fail_after(timeout):
            async with _client_for(server) as client:
                return await fn(client)
    except TimeoutError:
        raise UpstreamError(
            f"upstream MCP server {server.name!r} did not answer {action} within {timeout}s"
        ) from None
    except UpstreamError:
        raise
    except BaseException as exc:  # the SDK wraps transport failures in exception groups
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        reason = _first_reason(exc)
        raise UpstreamError(
            f"upstream MCP server {server.name!r} failed during {action}: {reason}"
        ) from None


def _first_reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def upstream_list_tools(server: UpstreamServer) -> list[dict[str, Any]]:
    async def fn(client: Client) -> list[dict[str, Any]]:
        result = await client.list_tools()
        return [
            {"name": t.name, "description": t.description or "", "input_schema": t.input_schema}
            for t in result.tools
        ]

    return anyio.run(_with_client, server, "tools/list", fn)  # type: ignore[no-any-return]


def upstream_call_tool(
    server: UpstreamServer, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    async def fn(client: Client) -> dict[str, Any]:
        result = await client.call_tool(tool, arguments)
        texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
        return {
            "is_error": bool(result.is_error),
            "text": "\n".join(texts),
            "structured": result.structured_content,
        }

    return anyio.run(_with_client, server, f"tools/call {tool}", fn)  # type: ignore[no-any-return]
