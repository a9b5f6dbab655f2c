"""Testing a connection: one harmless read from the provider with the stored credentials, and
what it answered, for an operator to see."""

from __future__ import annotations

from integrations.connections import connection_credentials, connection_require
from integrations.http import request_json
from tenants.models import Tenant
from tenants.scope import tenant_read_scope


def integration_probe(*, tenant: Tenant, provider: str) -> str:
    """Ask the provider who it thinks this connection is; returns its answer in a line, or raises
    UpstreamError (its refusal or silence) or NotConnected."""
    from integrations.n8n.client import N8nClient
    from integrations.shopify.client import SHOP_QUERY
    from integrations.shopify.effects import shopify_client_of
    from integrations.whatsapp.client import GRAPH_API_VERSION, GRAPH_BASE_URL

    with tenant_read_scope(tenant.pk):
        connection = connection_require(tenant=tenant, provider=provider)
        config = dict(connection.config)
    connection.tenant = tenant  # already at hand: no second read of the tenants table
    credentials = connection_credentials(connection)
    if provider == "shopify":
        shop = shopify_client_of(config, credentials).graphql(SHOP_QUERY)["shop"]
        return f"Shopify: shop {shop.get('name')!r} ({shop.get('myshopifyDomain')})"
    if provider == "whatsapp":
        base = (config.get("api_base_url") or GRAPH_BASE_URL).rstrip("/")
        phone = request_json(
            "WhatsApp Cloud API",
            "GET",
            f"{base}/{GRAPH_API_VERSION}/{config['phone_number_id']}",
            headers={"Authorization": f"Bearer {credentials['access_token']}"},
        )
        return (
            f"WhatsApp: {phone.get('display_phone_number')} "
            f"({phone.get('verified_name')}, quality {phone.get('quality_rating')})"
        )
    workflows = N8nClient(
        base_url=config["base_url"], api_key=credentials["api_key"]
    ).list_workflows(active=None, limit=5, cursor=None)
    names = ", ".join(str(w.get("name")) for w in workflows.get("data", []))
    return f"n8n: workflows {names or '(none)'}"
