"""/mcp: streamable HTTP, stateless (any replica serves any request), bearer API key per request."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import anyio
import pydantic_core
from django.conf import settings
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from mcp_tools.auth import BoundKey, bearer_token, cached_principal, principal_from_mcp_bearer
from mcp_tools.context import Principal
from mcp_tools.server import UNAUTHENTICATED, build_server, in_operation_thread
from mcp_tools.stdio_pipes import call_params_refusal
from smarteros.client_address import scope_client_address
from smarteros.errors import AuthenticationFailed, RateLimited

Scope = dict[str, Any]


def _principal_from_request(ctx: Any) -> Principal:
    principal = ctx.request.scope.get("state", {}).get("principal") if ctx.request else None
    if principal is None:
        raise AuthenticationFailed("no authenticated principal for this request")
    return principal  # type: ignore[no-any-return]


def _security() -> TransportSecuritySettings:
    hosts: list[str] = []
    for host in settings.ALLOWED_HOSTS:
        hosts += [host, f"{host}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection="*" not in settings.ALLOWED_HOSTS,
        allowed_hosts=hosts,
        allowed_origins=list(settings.MCP_ALLOWED_ORIGINS),
    )


def loopback_security() -> TransportSecuritySettings:
    """For a server bound to loopback: loopback hosts and origins on any port (as the SDK does)."""
    loopback = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{host}:*" for host in loopback] + loopback,
        allowed_origins=[f"http://{host}:*" for host in loopback],
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


# Bodies up to this size are read ahead to choose the response form; larger ones stream through.
PEEK_LIMIT_BYTES = 65536


async def _peek_body(receive: Any) -> tuple[bytes | None, Any]:
    """The request body if it is complete within PEEK_LIMIT_BYTES (else None), and a receive
    callable that hands the SDK everything read ahead, then the rest."""
    messages: list[MutableMapping[str, Any]] = []
    size, complete = 0, False
    while size <= PEEK_LIMIT_BYTES:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break

    async def replay() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else await receive()

    body = b"".join(m.get("body", b"") for m in messages) if complete else None
    return body, replay


def _answerable_as_json(scope: Scope, body: bytes) -> bool:
    """Whether a POST may be answered with plain JSON: one request that asks for no progress
    notifications (they need the event stream), from a client that accepts both forms, as the
    protocol requires. Anything else, malformed bodies included, takes the stream path."""
    accept = _header(scope, b"accept") or ""
    if "application/json" not in accept or "text/event-stream" not in accept:
        return False
    try:
        # The SDK's own parser: nesting past its limit is a ValueError (the SDK then answers
        # 400), where json.loads would raise RecursionError from about 1,000 levels.
        message = pydantic_core.from_json(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or "id" not in message:
        return False
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return not (isinstance(meta, dict) and "progressToken" in meta)


def _call_params_refusal(body: bytes | None) -> dict[str, Any] | None:
    """A tools/call with a bad name or arguments, answered naming the field (stdio does the
    same per line)."""
    if body is None:
        return None
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return None  # the SDK answers what it cannot parse
    return call_params_refusal(message)


async def _send_json(
    send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class McpHttpApp:
    """ASGI app for /mcp. With `bound_key` (mcp_serve --transport http) no header is needed:
    the key comes from the server's environment, for local clients that cannot send one."""

    def __init__(
        self,
        bound_key: BoundKey | None = None,
        security: TransportSecuritySettings | None = None,
    ) -> None:
        self.bound_key = bound_key
        self.security = security
        self._managers: dict[bool, StreamableHTTPSessionManager] = {}

    def _manager(self, *, json_response: bool) -> StreamableHTTPSessionManager:
        # Built on first use: settings (hosts, origins) are read once Django is configured.
        if json_response not in self._managers:
            self._managers[json_response] = StreamableHTTPSessionManager(
                app=build_server(
                    _principal_from_request, surface="mcp-http", resolver_blocks=False
                ),
                stateless=True,
                json_response=json_response,
                security_settings=self.security or _security(),
            )
        return self._managers[json_response]

    @property
    def manager(self) -> StreamableHTTPSessionManager:
        """Answers with an event stream: GET, and requests that want progress notifications."""
        return self._manager(json_response=False)

    @property
    def json_manager(self) -> StreamableHTTPSessionManager:
        """Answers a request with its one JSON response, without the event stream's machinery."""
        return self._manager(json_response=True)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.manager.run(), self.json_manager.run():
            yield

    async def _authenticate(self, scope: Scope) -> Principal:
        if self.bound_key is not None:
            return await in_operation_thread(self.bound_key.principal)
        secret = bearer_token(_header(scope, b"authorization"))
        # A key this process accepted moments ago needs no database, hence no thread.
        principal = cached_principal(secret)
        if principal is not None:
            return principal
        return await in_operation_thread(
            functools.partial(principal_from_mcp_bearer, secret, client=scope_client_address(scope))
        )

    def _challenge(self, scope: Scope) -> bytes:
        """WWW-Authenticate of a 401: where OAuth clients discover how to get a token (RFC 9728
        resource_metadata, the scopes to ask for) and, if a credential was sent, that it failed."""
        if self.bound_key is not None:
            return b'Bearer realm="smarteros"'
        from mcp_tools.oauth.grants import resource_metadata_url
        from mcp_tools.oauth.scopes import read_scopes

        challenge = (
            f'Bearer realm="smarteros", resource_metadata="{resource_metadata_url()}", '
            f'scope="{" ".join(read_scopes())}"'
        )
        if bearer_token(_header(scope, b"authorization")):
            challenge += ', error="invalid_token"'
        return challenge.encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            principal = await self._authenticate(scope)
        except AuthenticationFailed as exc:
            await _send_json(
                send,
                401,
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": UNAUTHENTICATED, "message": exc.message},
                },
                [(b"www-authenticate", self._challenge(scope))],
            )
            return
        except RateLimited as exc:
            await _send_json(
                send,
                429,
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": UNAUTHENTICATED, "message": exc.message},
                },
                [(b"retry-after", str(exc.retry_after).encode())],
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        if scope.get("method") == "GET":
            await self._bounded_stream(scope, receive, send)
            return
        if scope.get("method") == "POST":
            body, receive = await _peek_body(receive)
            refusal = _call_params_refusal(body)
            if refusal is not None:
                await _send_json(send, 200, refusal, [])
                return
            if body is not None and _answerable_as_json(scope, body):
                await self.json_manager.handle_request(scope, receive, send)
                return
        await self.manager.handle_request(scope, receive, send)

    async def _bounded_stream(self, scope: Scope, receive: Any, send: Any) -> None:
        """`GET /mcp` (the server's event stream): closed after MCP_SSE_MAX_SECONDS, so an idle
        client cannot hold a connection and a task forever; clients reconnect when they need to."""
        response = {"started": False, "ended": False}

        async def tracked_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                response["ended"] = True
            await send(message)

        with anyio.move_on_after(settings.MCP_SSE_MAX_SECONDS):
            await self.manager.handle_request(scope, receive, tracked_send)
        if response["started"] and not response["ended"]:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


mcp_http_app = McpHttpApp()
