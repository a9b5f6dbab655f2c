"""An attacker with one tenant's API key tries to reach the host or the platform's network
through upstream MCP servers: no command runs, no inward address is ever connected to."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from smarteros.errors import PermissionDenied, UpstreamError
from tests.mcp_tools.clients import echo_http_server, stdio_client
from tests.processes import ServerProcess, free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def echo() -> Iterator[ServerProcess]:
    server = echo_http_server()
    yield server
    server.stop()


def list_tools_of(tenant: Any, url: str) -> list[dict[str, Any]]:
    """What agent_list_tools does once the row exists (registration checks come first)."""
    from mcp_tools.models import UpstreamServer
    from mcp_tools.upstream import upstream_list_tools

    return upstream_list_tools(UpstreamServer(tenant=tenant, name="up", transport="http", url=url))


def stored_servers() -> list[str]:
    from mcp_tools.models import UpstreamServer
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        return list(UpstreamServer.objects.values_list("name", flat=True))


def test_registration_refuses_stdio_and_inward_urls_and_stores_nothing(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    acme = make_tenant("acme")
    attempts = {
        "stdio": {"transport": "stdio", "command": "/bin/sh", "args": ["-c", "id"]},
        "stdio-no-command": {"transport": "stdio"},
        "loopback": {"url": "http://127.0.0.1:8080/admin"},
        "openbao": {"url": "http://127.0.0.1:8200/v1/sys/health"},
        "private": {"url": "http://10.0.0.1/mcp"},
        "metadata": {"url": "http://169.254.169.254/latest/meta-data/"},
        "ipv6-loopback": {"url": "http://[::1]:8080/"},
        "mapped": {"url": "http://[::ffff:127.0.0.1]:8080/"},
        "userinfo": {"url": "http://user:pw@upstream.example.com/mcp"},
    }

    async def main() -> dict[str, str]:
        texts = {}
        # Without the tests' loopback allowance, as in production.
        async with stdio_client({**server_env, "EGRESS_ALLOWED_NETWORKS": ""}, acme.key) as client:
            for name, spec in attempts.items():
                result = await client.call_tool("agent_register_mcp_server", {"name": name, **spec})
                assert result.is_error, name
                texts[name] = result.content[0].text
        return texts

    texts = anyio.run(main)
    assert "transport: tenants register http(s) servers only" in texts["stdio"]
    assert "command: Extra inputs are not permitted" in texts["stdio"]
    assert "transport: tenants register http(s) servers only" in texts["stdio-no-command"]
    assert "url: 127.0.0.1 is a loopback address" in texts["loopback"]
    assert "url: 127.0.0.1 is one of the platform's own services" in texts["openbao"]
    assert "url: 10.0.0.1 is a private address" in texts["private"]
    assert "url: 169.254.169.254 is the cloud metadata address" in texts["metadata"]
    assert "url: ::1 is a loopback address" in texts["ipv6-loopback"]
    assert "loopback" in texts["mapped"]
    assert "credentials in the URL are not allowed" in texts["userinfo"]
    assert stored_servers() == []


def test_production_requires_https(make_tenant: Any, settings: Any) -> None:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    settings.UPSTREAM_MCP_REQUIRE_HTTPS = True
    acme = make_tenant("acme")
    result = execute(
        "agent_register_mcp_server",
        {"name": "plain", "url": "http://upstream.example.com/mcp"},
        principal=principal_from_api_key(acme.key),
        surface="rest",
    )
    assert result.error is not None and result.error.http_status == 422
    assert "url: the URL must be https" in result.error.message
    assert stored_servers() == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "is a loopback address"),  # a name that resolves inward
        ("10.0.0.1", "10.0.0.1 is a private address"),
        ("169.254.169.254", "169.254.169.254 is the cloud metadata address"),
        ("[::1]", "::1 is a loopback address"),
    ],
)
def test_inward_addresses_are_refused_at_connect_time(
    make_tenant: Any, settings: Any, echo: ServerProcess, host: str, reason: str
) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = []
    acme = make_tenant("acme")
    started = time.monotonic()
    with pytest.raises(PermissionDenied) as refused:
        list_tools_of(acme.tenant, f"http://{host}:{echo.port}/mcp")
    assert reason in refused.value.message and refused.value.http_status == 403
    assert time.monotonic() - started < 2  # refused before any connection, not timed out


def test_the_loopback_allowance_is_what_lets_the_test_servers_through(
    make_tenant: Any, settings: Any, echo: ServerProcess
) -> None:
    acme = make_tenant("acme")
    url = f"http://localhost:{echo.port}/mcp"
    with pytest.raises(PermissionDenied):
        list_tools_of(acme.tenant, url)
    # "localhost" may also resolve to ::1: every address it resolves to must be allowed.
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]
    assert "echo" in [tool["name"] for tool in list_tools_of(acme.tenant, url)]


class _Redirector(http.server.BaseHTTPRequestHandler):
    target = ""
    hits = 0

    def _redirect(self) -> None:
        type(self).hits += 1
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = _redirect

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirector(echo: ServerProcess) -> Iterator[str]:
    """An allowed server (127.0.0.2) that redirects every request to the echo server on
    127.0.0.1."""
    _Redirector.target = f"http://127.0.0.1:{echo.port}/mcp"
    _Redirector.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.2", free_port()), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}/mcp"
    server.shutdown()
    server.server_close()


def test_a_redirect_to_loopback_is_refused(
    make_tenant: Any, settings: Any, redirector: str
) -> None:
    from mcp_tools.upstream_network import UpstreamAddressRefused, checked_http_client

    acme = make_tenant("acme")
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    # Through the SDK: it follows no redirect that leaves the origin.
    with pytest.raises(UpstreamError) as failed:
        list_tools_of(acme.tenant, redirector)
    assert "Redirect to http://127.0.0.1" in failed.value.message
    assert _Redirector.hits == 1

    # The client itself follows redirects, and checks each one's address before connecting.
    async def follow() -> None:
        async with checked_http_client({}) as client:
            await client.post(redirector, json={})

    with pytest.raises(UpstreamAddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
        anyio.run(follow)
    assert _Redirector.hits == 2
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.2/32", "127.0.0.1/32"]
    anyio.run(follow)  # allowed, the same redirect is followed to the echo server


def test_platform_services_are_refused_even_inside_the_allowance(
    make_tenant: Any, settings: Any
) -> None:
    from urllib.parse import urlparse

    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    acme = make_tenant("acme")
    for service in (settings.REDIS_URL, settings.VAULT_ADDR, settings.DATABASE_URL):
        parsed = urlparse(service)
        with pytest.raises(PermissionDenied) as refused:
            list_tools_of(acme.tenant, f"http://{parsed.hostname}:{parsed.port}/")
        assert "one of the platform's own services" in refused.value.message


def test_an_oversized_upstream_response_is_cut_off(
    make_tenant: Any, settings: Any, echo: ServerProcess
) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.UPSTREAM_MCP_MAX_RESPONSE_BYTES = 200  # the tool list is larger
    acme = make_tenant("acme")
    with pytest.raises(UpstreamError) as failed:
        list_tools_of(acme.tenant, f"http://127.0.0.1:{echo.port}/mcp")
    assert "larger than 200 bytes" in failed.value.message


def test_a_name_resolving_inward_is_refused_at_registration_and_when_used(
    server_env: dict[str, str], make_tenant: Any, echo: ServerProcess
) -> None:
    """A name is resolved at registration; a URL stored before that check (or a name that
    changed since) is checked again at each connection."""
    from mcp_tools.models import UpstreamServer
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    url = f"http://localhost:{echo.port}/mcp"
    with dangerously_unscoped():
        UpstreamServer.objects.create(tenant=acme.tenant, name="stored", url=url)

    async def main() -> Any:
        async with stdio_client(server_env, acme.key) as client:
            registered = await client.call_tool(
                "agent_register_mcp_server", {"name": "sneaky", "url": url}
            )
            assert registered.is_error
            assert "url: localhost is a loopback address" in registered.content[0].text
            return await client.call_tool(
                "agent_execute_tool", {"server": "stored", "tool": "echo", "arguments": {}}
            )

    called = anyio.run(main)
    assert called.is_error
    assert "url: upstream MCP server 'stored' may not be reached" in called.content[0].text
    assert "loopback" in called.content[0].text


def test_in_the_admin_only_superusers_choose_stdio_and_only_from_the_allowlist(
    make_tenant: Any, settings: Any
) -> None:
    from django.contrib.admin.sites import site
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from mcp_tools.admin import UpstreamServerForm
    from mcp_tools.models import UpstreamServer
    from tenants.scope import dangerously_unscoped

    settings.UPSTREAM_MCP_STDIO_SERVERS = {
        "catalog": {"command": "/bin/true", "args": [], "env": {}}
    }
    acme = make_tenant("acme")
    model_admin = site._registry[UpstreamServer]
    request = RequestFactory().get("/admin/")
    request.user = User(username="staff", is_staff=True, is_superuser=False)
    assert {"transport", "stdio_entry"} <= set(model_admin.get_readonly_fields(request))
    request.user = User(username="root", is_staff=True, is_superuser=True)
    assert "stdio_entry" not in model_admin.get_readonly_fields(request)

    def form(**data: str) -> UpstreamServerForm:
        return UpstreamServerForm(data={"tenant": str(acme.tenant.pk), "name": "x", **data})

    # A superuser's admin request is platform work (the tenants table is under RLS).
    with dangerously_unscoped():
        unknown = form(transport="stdio", stdio_entry="/bin/sh")
        assert not unknown.is_valid() and "stdio_entry" in unknown.errors
        allowed = form(transport="stdio", stdio_entry="catalog")
        assert allowed.is_valid(), allowed.errors
        inward = form(transport="http", url="http://169.254.169.254/")
        assert not inward.is_valid() and "metadata" in str(inward.errors["url"])
