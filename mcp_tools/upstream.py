"""Calling tools on a tenant's upstream MCP servers through the SDK's client.

HTTP servers are reached through the egress gate (`upstream_network.checked_http_client`:
every connection's address checked); stdio servers exist only as platform-defined entries of
UPSTREAM_MCP_STDIO_SERVERS that a platform admin enabled for the tenant.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
import mcp_types as types
from django.conf import settings
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mcp_tools.models import UpstreamServer
from mcp_tools.upstream_network import (
    CheckedTransport,
    UpstreamAddressRefused,
    UpstreamResponseTooLarge,
    checked_http_client,
)
from smarteros.errors import PermissionDenied, UpstreamError
from tenants.secrets import secret_decrypt


def credentials_purpose(server_name: str) -> str:
    return f"upstream-mcp:{server_name}"


def _client_for(server: UpstreamServer, transport: CheckedTransport) -> Client:
    timeout = settings.UPSTREAM_MCP_TIMEOUT_SECONDS
    if server.transport == UpstreamServer.Transport.HTTP:
        credentials: dict[str, str] = {}
        if server.credentials_ciphertext:
            credentials = secret_decrypt(
                slug=server.tenant.slug,
                purpose=credentials_purpose(server.name),
                ciphertext=server.credentials_ciphertext,
            )
        return Client(
            streamable_http_client(
                server.url, http_client=checked_http_client(credentials, transport)
            ),
            mode="legacy",
            read_timeout_seconds=timeout,
        )
    entry: dict[str, Any] | None = settings.UPSTREAM_MCP_STDIO_SERVERS.get(server.stdio_entry)
    if entry is None:
        raise PermissionDenied(
            f"server: {server.name!r} names stdio entry {server.stdio_entry!r}, which this "
            "platform does not define (UPSTREAM_MCP_STDIO_SERVERS)"
        )
    # Only PATH and the entry's own environment: the platform's environment stays private.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **entry["env"]}
    params = StdioServerParameters(command=entry["command"], args=list(entry["args"]), env=env)
    return Client(params, mode="legacy", read_timeout_seconds=timeout)


async def _with_client(server: UpstreamServer, action: str, fn: Any) -> Any:
    timeout = settings.UPSTREAM_MCP_TIMEOUT_SECONDS
    transport = CheckedTransport()
    try:
        with anyio.fail_after(timeout):
            async with _client_for(server, transport) as client:
                return await fn(client)
    except TimeoutError:
        raise UpstreamError(
            f"upstream MCP server {server.name!r} did not answer {action} within {timeout}s"
        ) from None
    except (UpstreamError, PermissionDenied):
        raise
    except BaseException as exc:  # the SDK wraps transport failures in exception groups
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        refused = _find(exc, UpstreamAddressRefused) or _first_of(
            transport.problems, UpstreamAddressRefused
        )
        if refused is not None:
            raise PermissionDenied(
                f"url: upstream MCP server {server.name!r} may not be reached: {refused}"
            ) from None
        too_large = _find(exc, UpstreamResponseTooLarge) or _first_of(
            transport.problems, UpstreamResponseTooLarge
        )
        if too_large is not None:
            raise UpstreamError(
                f"upstream MCP server {server.name!r} failed during {action}: {too_large}"
            ) from None
        reason = _first_reason(exc)
        raise UpstreamError(
            f"upstream MCP server {server.name!r} failed during {action}: {reason}"
        ) from None


def _first_of(problems: list[Exception], kind: type[Exception]) -> Exception | None:
    return next((p for p in problems if isinstance(p, kind)), None)


def _find(exc: BaseException, kind: type[Exception]) -> BaseException | None:
    """The first `kind` in `exc`, its exception groups or its causes."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return None


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
