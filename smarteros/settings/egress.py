"""The egress gate's settings (smarteros/infra/egress.py): what tenant-influenced calls may reach."""

import ipaddress

from .env import env_int, env_list, report_problem


def cidr_list(name: str) -> list[str]:
    """A comma-separated list of CIDRs; a malformed entry is reported with the others."""
    networks = env_list(name, "")
    for cidr in networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            report_problem(f"{name} must be comma-separated CIDRs, got {cidr!r}")
    return networks


# Local stand-ins only: CIDRs a tenant-influenced call (a provider, the LLM, n8n, an upstream MCP
# server) may reach although they are otherwise refused (loopback, private...). Empty by default
# and in production. The platform's own services stay refused even inside these networks.
# UPSTREAM_MCP_ALLOWED_NETWORKS is the older name of the same setting.
EGRESS_ALLOWED_NETWORKS = cidr_list("EGRESS_ALLOWED_NETWORKS") or cidr_list(
    "UPSTREAM_MCP_ALLOWED_NETWORKS"
)
# Networks never reached beyond the built-in refusals (UPSTREAM_MCP_BLOCKED_NETWORKS: older name).
EGRESS_BLOCKED_NETWORKS = cidr_list("EGRESS_BLOCKED_NETWORKS") or cidr_list(
    "UPSTREAM_MCP_BLOCKED_NETWORKS"
)
# Largest response body a provider call reads whole; a streamed download's bound is larger.
EGRESS_MAX_RESPONSE_BYTES = env_int("EGRESS_MAX_RESPONSE_BYTES", 16 * 1024 * 1024, minimum=65536)
EGRESS_MAX_DOWNLOAD_BYTES = env_int("EGRESS_MAX_DOWNLOAD_BYTES", 2 * 1024**3, minimum=65536)
# Redirects a provider call follows when it asks to (each one checked like the first request).
EGRESS_MAX_REDIRECTS = env_int("EGRESS_MAX_REDIRECTS", 3, minimum=0)
