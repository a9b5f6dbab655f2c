"""The client's address, for throttles and logs: the connecting peer, unless that peer is a
reverse proxy listed in TRUSTED_PROXIES; then the nearest X-Forwarded-For entry that is not a
trusted proxy. Anyone can write X-Forwarded-For, so it is believed only from a trusted proxy
(the web server itself is run without proxy-header rewriting, so the peer here is the real one).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(*, peer: str, forwarded_for: str | None) -> str:
    """The client behind a connection from `peer` carrying `forwarded_for` (the header's value,
    entries comma-separated, the nearest proxy's last)."""
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not hop:
            continue
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: trust none of it
        if not _trusted(hop, networks):
            return hop
    return peer


def request_client_address(request: HttpRequest) -> str:
    """`client_address` of a Django request."""
    return client_address(
        peer=str(request.META.get("REMOTE_ADDR", "")),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
    )


def scope_client_address(scope: Any) -> str:
    """`client_address` of an ASGI connection scope."""
    client = scope.get("client") or ("unknown", 0)
    forwarded = None
    for name, value in scope.get("headers") or []:
        if name == b"x-forwarded-for":
            # Several headers count as one comma-separated list, in order.
            text = value.decode("latin-1")
            forwarded = text if forwarded is None else f"{forwarded},{text}"
    return client_address(peer=str(client[0]), forwarded_for=forwarded)
