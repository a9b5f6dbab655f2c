"""Where a tenant's upstream MCP server may be reached: checked at every connection.

A tenant-supplied URL is hostile. Its host is resolved when a connection is opened (the first
request, every redirect, every reconnect), every address it resolves to is checked, and the
connection goes to the checked address itself, so a name cannot resolve to a public address for
the check and to a private one for the connection (DNS rebinding). Refused: loopback, private,
link-local (the cloud metadata address among them), unique-local, multicast, unspecified and
reserved addresses, and the platform's own services, unless an address is inside
UPSTREAM_MCP_ALLOWED_NETWORKS (for the test suite's loopback servers; empty by default).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlparse

import anyio
import httpcore2
import httpx2
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")


class UpstreamAddressRefused(Exception):
    """The upstream's URL points somewhere tenants may not reach; `str()` says where and why."""


class UpstreamResponseTooLarge(Exception):
    """The upstream sent more than UPSTREAM_MCP_MAX_RESPONSE_BYTES in one response."""


def address_refusal(ip: IPAddress, port: int | None = None) -> str | None:
    """Why `ip` (and `port`) may not be an upstream's address, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if port is not None and (ip, port) in platform_endpoints():
        return "one of the platform's own services"
    if any(ip in net for net in _networks(tuple(settings.UPSTREAM_MCP_ALLOWED_NETWORKS))):
        return None
    if ip == METADATA_ADDRESS:
        return "the cloud metadata address"
    for reason, test in (
        ("a loopback address", ip.is_loopback),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("an unspecified address", ip.is_unspecified),
        ("a private address", ip.is_private),  # also unique-local fc00::/7
        ("a reserved address", ip.is_reserved),
    ):
        if test:
            return reason
    if any(ip in net for net in _networks(tuple(settings.UPSTREAM_MCP_BLOCKED_NETWORKS))):
        return "a blocked network (UPSTREAM_MCP_BLOCKED_NETWORKS)"
    return None


def url_refusal(url: str) -> str | None:
    """Why `url` may not be an upstream's URL without resolving it (scheme, literal address)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        return "the URL must be http(s)"
    if settings.UPSTREAM_MCP_REQUIRE_HTTPS and parsed.scheme != "https":
        return "the URL must be https"
    if parsed.username or parsed.password:
        return "credentials in the URL are not allowed; pass them as credentials"
    host = (parsed.hostname or "").strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = address_refusal(ip, parsed.port or (443 if parsed.scheme == "https" else 80))
    return f"{host} is {reason}" if reason else None


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


@functools.cache
def platform_endpoints() -> frozenset[tuple[IPAddress, int]]:
    """The (address, port) of every service the platform itself uses, from its settings."""
    urls = [
        settings.DATABASE_URL,
        settings.REDIS_URL,
        settings.CLICKHOUSE_URL,
        settings.CLICKHOUSE_READ_URL,
        settings.VAULT_ADDR,
        settings.SMARTEROS_PUBLIC_URL,
        *[f"kafka://{server}" for server in settings.KAFKA_BOOTSTRAP_SERVERS.split(",") if server],
    ]
    endpoints: set[tuple[IPAddress, int]] = set()
    for url in urls:
        parsed = urlparse(url)
        if not parsed.hostname:
            continue
        port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme, 0)
        try:
            infos = socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
        except OSError:
            continue
        endpoints |= {(ipaddress.ip_address(info[4][0]), port) for info in infos}
        if parsed.scheme == "clickhouse":
            # ClickHouse's HTTP interface sits beside the native one.
            endpoints |= {(ipaddress.ip_address(info[4][0]), 8123) for info in infos}
    return frozenset(endpoints)


class CheckedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address (never re-resolves)."""

    def __init__(self) -> None:
        self._backend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for ip in addresses:
            # Every address, not only the one used: a name that also resolves inward is refused.
            reason = address_refusal(ip, port)
            if reason:
                shown = host if host == str(ip) else f"{host} ({ip})"
                raise UpstreamAddressRefused(f"{shown} is {reason}")
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except httpcore2.ConnectError as exc:
                last = exc
        raise last or httpcore2.ConnectError(f"{host} resolves to no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise UpstreamAddressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _LimitedStream(httpx2.AsyncByteStream):
    def __init__(
        self, stream: httpx2.AsyncByteStream, limit: int, problems: list[Exception]
    ) -> None:
        self._stream = stream
        self._limit = limit
        self._problems = problems

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                problem = UpstreamResponseTooLarge(
                    f"the response is larger than {self._limit} bytes"
                )
                self._problems.append(problem)
                raise problem
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class CheckedTransport(httpx2.AsyncHTTPTransport):
    """httpx transport for upstream MCP servers: checked connections, bounded responses.

    `problems` keeps every refusal it raised: the SDK reads responses in its own tasks and may
    report a cut-off stream only as "ended without a response"."""

    def __init__(self) -> None:
        self.problems: list[Exception] = []
        # No proxies from the environment: a proxy would connect on our behalf, unchecked.
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=CheckedNetworkBackend(),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            reason = url_refusal(str(request.url))  # redirects too: no https -> http downgrade
            if reason:
                raise UpstreamAddressRefused(reason)
            response = await super().handle_async_request(request)
        except UpstreamAddressRefused as exc:
            self.problems.append(exc)
            raise
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _LimitedStream(
            response.stream, settings.UPSTREAM_MCP_MAX_RESPONSE_BYTES, self.problems
        )
        return response


def checked_http_client(
    headers: dict[str, str], transport: CheckedTransport | None = None
) -> httpx2.AsyncClient:
    """The httpx client every upstream MCP call uses (give it to streamable_http_client)."""
    timeout = settings.UPSTREAM_MCP_TIMEOUT_SECONDS
    return httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(timeout, read=timeout),
        transport=transport or CheckedTransport(),
        follow_redirects=settings.UPSTREAM_MCP_MAX_REDIRECTS > 0,
        max_redirects=settings.UPSTREAM_MCP_MAX_REDIRECTS,
        trust_env=False,
    )
