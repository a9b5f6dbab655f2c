"""Testing a connection: one harmless read from the provider with the stored credentials, and
what it answered, for an operator to see."""

from __future__ import annotations

from integrations.connections import connection_credentials, connection_require
from smarteros.errors import InvalidInput, UpstreamError
from tenants.models import Tenant
from tenants.scope import tenant_read_scope


def _shown(value: object) -> str:
    """A value of the provider's answer as a page and the audit trail may show it: short and
    printable (the answer is the provider's, not ours to repeat at length)."""
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text[:80] + ("…" if len(text) > 80 else "")


def integration_probe(*, tenant: Tenant, provider: str) -> str:
    """Ask the provider who it thinks this connection is; returns its answer in a line, or raises
    UpstreamError (its refusal, its silence, an answer of the wrong shape), EgressRefusedError
    (the connection's URL may not be reached) or NotConnected. Calls go through the egress gate
    like every provider call."""
    try:
        return _probe(tenant=tenant, provider=provider)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise UpstreamError(
            f"{provider} answered the test in a shape it does not document"
        ) from None


def _probe(*, tenant: Tenant, provider: str) -> str:
    from integrations.n8n.client import N8nClient
    from integrations.shopify.client import SHOP_QUERY
    from integrations.shopify.effects import shopify_client_of
    from integrations.whatsapp.client import GRAPH_BASE_URL, WhatsAppClient

    with tenant_read_scope(tenant.pk):
        connection = connection_require(tenant=tenant, provider=provider)
        config = dict(connection.config)
    connection.tenant = tenant  # already at hand: no second read of the tenants table
    credentials = connection_credentials(connection)
    if provider == "shopify":
        shop = shopify_client_of(config, credentials).graphql(SHOP_QUERY)["shop"]
        return f"Shopify: shop {_shown(shop['name'])!r} ({_shown(shop['myshopifyDomain'])})"
    if provider == "whatsapp":
        phone = WhatsAppClient(
            phone_number_id=config["phone_number_id"],
            access_token=credentials["access_token"],
            base_url=config.get("api_base_url") or GRAPH_BASE_URL,
        ).phone_number()
        return (
            f"WhatsApp: {_shown(phone.get('display_phone_number'))} "
            f"({_shown(phone.get('verified_name'))}, "
            f"quality {_shown(phone.get('quality_rating'))})"
        )
    if provider == "clerk":
        from integrations.clerk.signatures import svix_secret_key

        # SmarterOS never calls Clerk: what can be tested is the stored signing secret.
        try:
            svix_secret_key(str(credentials.get("signing_secret") or ""))
        except ValueError as exc:
            raise InvalidInput(f"signing_secret: {exc}; save the endpoint's secret again") from None
        return "Clerk: the signing secret is a valid whsec_ secret (Clerk only sends webhooks)"
    workflows = N8nClient.of(config, credentials).list_workflows(active=None, limit=5, cursor=None)
    names = ", ".join(_shown(w["name"]) for w in workflows.get("data", []))
    return f"n8n: workflows {_shown(names) or '(none)'}"
