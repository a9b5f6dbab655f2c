"""Serve the tenant's MCP tools over stdio (Claude Desktop) or loopback HTTP, bound to the API
key in SMARTEROS_API_KEY. Over stdio, stdout carries only the protocol; logs go to stderr."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
from django.core.management.base import BaseCommand, CommandParser

from mcp_tools.auth import BoundKey
from smarteros.errors import AuthenticationFailed


class Command(BaseCommand):
    help = "Serve MCP over stdio (default) or HTTP for the tenant of SMARTEROS_API_KEY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
        parser.add_argument("--host", default="127.0.0.1", help="HTTP only; loopback by default.")
        parser.add_argument("--port", type=int, default=8765, help="HTTP only.")
        parser.add_argument(
            "--tools",
            choices=["all", "top"],
            default="all",
            help="tools/list: every tool the key may call, or only tools_search and the tenant's "
            "most used (MCP_TOP_TOOLS), for clients with small context windows.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            bound_key = BoundKey(os.environ.get("SMARTEROS_API_KEY"))
        except AuthenticationFailed as exc:
            hint = (
                "set SMARTEROS_API_KEY to a tenant API key (manage.py seed_demo --json lists the "
                "demo keys; manage.py mcp_config --tenant SLUG prints a ready configuration)"
            )
            sys.stderr.write(f"mcp_serve: {exc.message}; {hint}\n")
            sys.exit(2)
        sys.stderr.write(
            f"mcp_serve: serving tenant {bound_key.tenant_slug} over {options['transport']}\n"
        )
        if options["transport"] == "stdio":
            anyio.run(_serve_stdio, bound_key, options["tools"])
        else:
            _serve_http(bound_key, options["host"], options["port"])


async def _serve_stdio(bound_key: BoundKey, listing: str = "all") -> None:
    from django.conf import settings
    from mcp.server.stdio import stdio_server

    from mcp_tools.server import build_server, in_operation_thread
    from mcp_tools.stdio_pipes import guarded_stdio

    server = build_server(lambda ctx: bound_key.principal(), surface="mcp-stdio", listing=listing)
    options = server.create_initialization_options()

    async def count_refusal(message: str) -> None:
        await in_operation_thread(_record_refused_line, bound_key, message)

    async with (
        guarded_stdio(settings.MCP_STDIO_MAX_LINE_BYTES, count_refusal) as (stdin, stdout),
        stdio_server(stdin, stdout) as (read_stream, write_stream),  # type: ignore[arg-type]
    ):
        await server.run(read_stream, write_stream, options)


def _record_refused_line(bound_key: BoundKey, message: str) -> None:
    """A refused line counts against the tenant's rate limit and is recorded in telemetry,
    like any refused call."""
    from mcp_tools.executor import execute
    from smarteros.errors import InvalidInput

    try:
        principal = bound_key.principal()
    except AuthenticationFailed:
        return
    execute(
        "mcp_invalid_message",
        None,
        principal=principal,
        surface="mcp-stdio",
        refusal=InvalidInput(message),
    )


def _serve_http(bound_key: BoundKey, host: str, port: int) -> None:
    import uvicorn

    from mcp_tools.http import McpHttpApp, loopback_security

    mcp_app = McpHttpApp(bound_key=bound_key, security=loopback_security())

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            async with mcp_app.lifespan():
                while (message := await receive())["type"] != "lifespan.shutdown":
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "http" and scope["path"].rstrip("/") == "/mcp":
            await mcp_app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found; MCP is at /mcp"})

    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
