"""Where a tenant's upstream MCP server may be reached: the egress gate, with the upstreams' rules.

Every check lives in smarteros/infra/egress.py (resolve, check every address, connect to the
checked one, at every connection and redirect). Upstreams add their own: https when
UPSTREAM_MCP_REQUIRE_HTTPS, UPSTREAM_MCP_MAX_RESPONSE_BYTES and UPSTREAM_MCP_MAX_REDIRECTS.
"""

from __future__ import annotations

from django.conf import settings

from smarteros.infra import egress
from smarteros.infra.egress import (
    CheckedNetworkBackend,
    address_refusal,
    platform_endpoints,
)

UpstreamAddressRefused = egress.EgressRefused
UpstreamResponseTooLarge = egress.ResponseTooLarge

__all__ = [
    "CheckedNetworkBackend",
    "CheckedTransport",
    "UpstreamAddressRefused",
    "UpstreamResponseTooLarge",
    "address_refusal",
    "checked_http_client",
    "platform_endpoints",
    "url_refusal",
]


def url_refusal(url: str) -> str | None:
    """Why `url` may not be an upstream's URL (checked when it is registered: resolved too)."""
    return egress.url_refusal(url, require_https=settings.UPSTREAM_MCP_REQUIRE_HTTPS, resolve=True)


class CheckedTransport(egress.CheckedTransport):
    """The gate's async transport with the upstreams' https rule and response bound."""

    def __init__(self) -> None:
        super().__init__(
            require_https=settings.UPSTREAM_MCP_REQUIRE_HTTPS,
            max_response_bytes=settings.UPSTREAM_MCP_MAX_RESPONSE_BYTES,
        )


def checked_http_client(
    headers: dict[str, str], transport: CheckedTransport | None = None
) -> egress.AsyncClient:
    """The httpx client every upstream MCP call uses (give it to streamable_http_client)."""
    return egress.egress_async_client(
        headers=headers,
        timeout=settings.UPSTREAM_MCP_TIMEOUT_SECONDS,
        transport=transport or CheckedTransport(),
        max_redirects=settings.UPSTREAM_MCP_MAX_REDIRECTS,
    )
