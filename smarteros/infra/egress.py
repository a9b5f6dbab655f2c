"""The egress gate: every outbound connection a tenant can influence goes through here.

A tenant-supplied URL is hostile (a provider's base URL, an LLM endpoint, an upstream MCP server,
a download link a provider hands back). It is checked twice:

- when it is saved, `url_refusal(url, resolve=True)`: scheme, no userinfo, the host in every
  spelling an IPv4 parser accepts (127.1, 0x7f000001, 2130706433, 017700000001), IPv6 (mapped,
  6to4, NAT64 embeddings included), `localhost` names, and every address the name resolves to;
- at every connection (the first request, each redirect, each reconnect), by the clients below:
  their network backend resolves the host, checks every address, then connects to the checked
  address itself, so a name cannot answer public for the check and private for the connection
  (DNS rebinding). No proxy from the environment, no unix socket, bounded response bodies.

Refused: loopback, private, link-local (the metadata address among them), shared (CGNAT),
multicast, unspecified, reserved and other non-public addresses, EGRESS_BLOCKED_NETWORKS, and the
platform's own services (database, Redis, ClickHouse, Vault, Kafka, its public URL). Local
stand-ins are reached only through EGRESS_ALLOWED_NETWORKS (empty in production); the platform's
own services stay refused inside it. Nothing outside this module builds an HTTP client for such a
call (tests/smarteros/test_egress_gate.py enumerates the code).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # CGNAT, RFC 6598
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_TIMEOUT = 15.0
# A request extension: the largest body this one request may read (a streamed download's).
MAX_BYTES_EXTENSION = "smarteros.max_response_bytes"


# What callers of the gate's clients handle, so that they never import the HTTP library.
Response = httpx2.Response
AsyncClient = httpx2.AsyncClient
TransportTimeout = httpx2.TimeoutException
TransportError = httpx2.HTTPError
# The request went out and no answer came back (read timed out, connection dropped mid-answer):
# the other side may have acted. A connect failure, by contrast, sent nothing.
AnswerLost = (httpx2.ReadTimeout, httpx2.ReadError, httpx2.RemoteProtocolError)


class EgressRefused(Exception):
    """The destination is one tenants may not reach; `str()` says which address and why."""


class ResponseTooLarge(Exception):
    """The answer is larger than the gate lets one response be."""


def host_address(host: str) -> IPAddress | None:
    """The address `host` spells if it is a literal, in any spelling a resolver would accept
    (IPv6 in brackets or not, IPv4 as inet_aton reads it: 127.1, 0x7f000001, 2130706433,
    017700000001, 0177.0.0.1); None for a name."""
    literal = host.strip("[]")
    try:
        return ipaddress.ip_address(literal)
    except ValueError:
        pass
    if not literal or not all(part.isalnum() for part in literal.split(".")):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(literal))
    except OSError:
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo): each is checked."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def _is_public(ip: IPAddress) -> bool:
    return ip.is_global and ip not in SHARED_ADDRESS_SPACE


def address_refusal(ip: IPAddress, port: int | None = None) -> str | None:
    """Why `ip` (and `port`) may not be reached by a tenant-influenced call, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            if reason := address_refusal(inner, port):
                return reason
        if ip.ipv4_mapped is not None:
            return None
    if port is not None and _is_platform_endpoint(ip, port):
        return "one of the platform's own services"
    if any(ip in net for net in _networks(tuple(settings.EGRESS_ALLOWED_NETWORKS))):
        return None
    if ip == METADATA_ADDRESS:
        return "the cloud metadata address"
    for reason, test in (
        ("a loopback address", ip.is_loopback),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("an unspecified address", ip.is_unspecified),
        ("a private address", ip.is_private),  # also unique-local fc00::/7
        ("a shared (CGNAT) address", ip in SHARED_ADDRESS_SPACE),
        ("a reserved address", ip.is_reserved),
        ("not a public address", not ip.is_global),
    ):
        if test:
            return reason
    if any(ip in net for net in _networks(tuple(settings.EGRESS_BLOCKED_NETWORKS))):
        return "a blocked network (EGRESS_BLOCKED_NETWORKS)"
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def url_refusal(url: str, *, require_https: bool = False, resolve: bool = False) -> str | None:
    """Why `url` may not be the address of a tenant-influenced call, or None if it may.

    Without `resolve` only the URL itself is read (scheme, credentials, a literal address in
    any spelling, localhost names); with it the host name is resolved too and refused if any
    address it has is refused (a name that does not resolve now is checked again at every
    connection). Used when a URL is saved, and by the clients for every request."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:
        return "the URL cannot be parsed (or its port is not 0-65535)"
    if parsed.scheme not in ("http", "https"):
        return "the URL must be http(s)"
    if require_https and parsed.scheme != "https":
        return "the URL must be https"
    if parsed.username or parsed.password or "@" in parsed.netloc:
        return "credentials in the URL are not allowed; they belong in the connection's secrets"
    host = (parsed.hostname or "").rstrip(".").lower()
    if not host:
        return "the URL has no host"
    port = port or _default_port(parsed.scheme)
    if host == "localhost" or host.endswith(".localhost"):
        # Resolvers answer loopback for these names (RFC 6761) whatever a hosts file says.
        for loopback in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
            if reason := address_refusal(loopback, port):
                return f"{host} is {reason}"
    ip = host_address(host)
    if ip is not None:
        reason = address_refusal(ip, port)
        return f"{host} is {reason}" if reason else None
    if not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        resolved = ipaddress.ip_address(info[4][0])
        if reason := address_refusal(resolved, port):
            return f"{host} resolves to {reason}"  # which address is not the tenant's to know
    return None


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _platform_urls() -> tuple[str, ...]:
    kafka = str(getattr(settings, "KAFKA_BOOTSTRAP_SERVERS", ""))
    urls = [
        getattr(settings, name, "")
        for name in (
            "DATABASE_URL",
            "DATABASE_PLATFORM_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "CLICKHOUSE_URL",
            "CLICKHOUSE_READ_URL",
            "VAULT_ADDR",
            "SMARTEROS_PUBLIC_URL",
        )
    ]
    return (*urls, *(f"kafka://{server.strip()}" for server in kafka.split(",") if server))


def platform_endpoints() -> frozenset[tuple[IPAddress, int]]:
    """The (address, port) of every service the platform itself uses, from its settings (read
    again when they change: tests move the broker)."""
    return _platform_endpoints(_platform_urls())


@functools.cache
def _platform_endpoints(urls: tuple[str, ...]) -> frozenset[tuple[IPAddress, int]]:
    endpoints: set[tuple[IPAddress, int]] = set()
    for url in urls:
        try:
            parsed = urlsplit(str(url))
            port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme, 0)
        except ValueError:
            continue
        if not parsed.hostname:
            continue
        try:
            infos = socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
        endpoints |= {(ip, port) for ip in addresses}
        if parsed.scheme == "clickhouse":
            # ClickHouse's HTTP interface sits beside the native one.
            endpoints |= {(ip, 8123) for ip in addresses}
    return frozenset(endpoints)


def _is_platform_endpoint(ip: IPAddress, port: int) -> bool:
    endpoints = platform_endpoints()
    if (ip, port) in endpoints:
        return True
    # A service on a non-public address is reachable under other addresses of the same host
    # (127.0.0.2, the host's own private address when it listens on 0.0.0.0): its port is
    # refused on every non-public address.
    inward_ports = {p for address, p in endpoints if not _is_public(address)}
    return port in inward_ports and not _is_public(ip)


def _checked_addresses(host: str, port: int, infos: Iterable[Any]) -> list[IPAddress]:
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for ip in addresses:
        # Every address, not only the one used: a name that also resolves inward is refused.
        if reason := address_refusal(ip, port):
            raise EgressRefused(
                f"{host} is {reason}" if host == str(ip) else f"{host} resolves to {reason}"
            )
    return addresses


class CheckedSyncBackend(httpcore2.SyncBackend):
    """Resolves, checks every address, then connects to a checked address (never re-resolves)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from None
        last: Exception | None = None
        for ip in _checked_addresses(host, port, infos):
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore2.ConnectError as exc:
                last = exc
        raise last or httpcore2.ConnectError(f"{host} resolves to no address")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        raise EgressRefused("unix sockets are not allowed")


class _LimitedSyncStream(httpx2.SyncByteStream):
    def __init__(self, stream: httpx2.SyncByteStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise ResponseTooLarge(f"the response is larger than {self._limit} bytes")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class EgressTransport(httpx2.HTTPTransport):
    """httpx transport of every provider call: checked URLs and connections, bounded bodies."""

    def __init__(self) -> None:
        # No proxies from the environment: a proxy would connect on our behalf, unchecked.
        super().__init__(trust_env=False)
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=CheckedSyncBackend(),
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if reason := url_refusal(str(request.url)):  # every redirect comes through here too
            raise EgressRefused(reason)
        limit = request.extensions.get(MAX_BYTES_EXTENSION) or settings.EGRESS_MAX_RESPONSE_BYTES
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx2.SyncByteStream)
        response.stream = _LimitedSyncStream(response.stream, int(limit))
        return response


_client: tuple[int, httpx2.Client] | None = None


def egress_client() -> httpx2.Client:
    """The process's one checked client for provider calls (also the LLM SDK's `http_client`).
    One per process keeps connections to the providers open and builds its TLS context once;
    a forked child (Celery's pool) makes its own rather than sharing the parent's sockets.
    Never close it."""
    global _client
    if _client is None or _client[0] != os.getpid():
        client = httpx2.Client(
            timeout=DEFAULT_TIMEOUT,
            transport=EgressTransport(),
            follow_redirects=False,
            max_redirects=settings.EGRESS_MAX_REDIRECTS,
            trust_env=False,
        )
        _client = (os.getpid(), client)
    return _client[1]


class CheckedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """The async twin of CheckedSyncBackend (for async callers: the MCP SDK)."""

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
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from None
        last: Exception | None = None
        for ip in _checked_addresses(host, port, infos):
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
        raise EgressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _LimitedAsyncStream(httpx2.AsyncByteStream):
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
                problem = ResponseTooLarge(f"the response is larger than {self._limit} bytes")
                self._problems.append(problem)
                raise problem
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class CheckedTransport(httpx2.AsyncHTTPTransport):
    """Async httpx2 transport: checked URLs and connections, bounded responses.

    `problems` keeps every refusal it raised: the MCP SDK reads responses in its own tasks and
    may report a cut-off stream only as "ended without a response"."""

    def __init__(self, *, require_https: bool = False, max_response_bytes: int = 0) -> None:
        self.problems: list[Exception] = []
        self._require_https = require_https
        self._limit = max_response_bytes or settings.EGRESS_MAX_RESPONSE_BYTES
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=CheckedNetworkBackend(),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            # Redirects too: no https -> http downgrade.
            reason = url_refusal(str(request.url), require_https=self._require_https)
            if reason:
                raise EgressRefused(reason)
            response = await super().handle_async_request(request)
        except EgressRefused as exc:
            self.problems.append(exc)
            raise
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _LimitedAsyncStream(response.stream, self._limit, self.problems)
        return response


def egress_async_client(
    *,
    headers: dict[str, str],
    timeout: float,
    transport: CheckedTransport | None = None,
    max_redirects: int | None = None,
) -> httpx2.AsyncClient:
    """A checked async client (httpx2) for one conversation with a tenant's server."""
    redirects = settings.EGRESS_MAX_REDIRECTS if max_redirects is None else max_redirects
    return httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(timeout, read=timeout),
        transport=transport or CheckedTransport(),
        follow_redirects=redirects > 0,
        max_redirects=redirects,
        trust_env=False,
    )
