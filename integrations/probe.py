"""Testing a connection: one harmless read from the provider with the stored credentials, and
what it answered, for an operator to see."""

from __future__ import annotations

from integrations.connections import connection_credentials, connection_require
from integrations.providers import provider_spec
from smarteros.errors import InvalidInput, UpstreamError
from tenants.models import Tenant
from tenants.scope import tenant_read_scope


def shown(value: object) -> str:
    """A value of the provider's answer as a page and the audit trail may show it: short and
    printable (the answer is the provider's, not ours to repeat at length)."""
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text[:80] + ("…" if len(text) > 80 else "")


def integration_probe(*, tenant: Tenant, provider: str) -> str:
    """Ask the provider who it thinks this connection is; returns its answer in a line, or raises
    UpstreamError (its refusal, its silence, an answer of the wrong shape), EgressRefusedError
    (the connection's URL may not be reached), InvalidInput (nothing to test) or NotConnected.
    Calls go through the egress gate like every provider call."""
    spec = provider_spec(provider)
    if spec.probe is None:
        raise InvalidInput(f"{provider} has no test: SmarterOS only calls it when it is used")
    with tenant_read_scope(tenant.pk):
        connection = connection_require(tenant=tenant, provider=provider)
        config = dict(connection.config)
    connection.tenant = tenant  # already at hand: no second read of the tenants table
    credentials = connection_credentials(connection)
    try:
        return spec.probe(config, credentials)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError(
            f"{provider} answered the test in a shape it does not document"
        ) from None
