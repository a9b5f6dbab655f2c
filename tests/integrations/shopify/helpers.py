"""Calling operations as a client would, and reading what the Shopify stand-in received."""

from __future__ import annotations

from typing import Any


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


def graphql_requests(saas: Any, marker: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of the GraphQL requests the stand-in received whose document has `marker`."""
    return [
        (path, body)
        for method, path, _, body in saas.state.requests
        if method == "POST" and path.endswith("/graphql.json") and marker in body["query"]
    ]


def connect_shopify(tenant: Any, saas: Any, **config: str) -> Any:
    from integrations.services import integration_connect
    from tests.fixtures.deliveries import SHOPIFY_APP_SECRET
    from tests.fixtures.saas import SHOPIFY_TOKEN

    return integration_connect(
        tenant=tenant,
        provider="shopify",
        config={"shop_domain": f"{tenant.slug}.myshopify.com", "api_base_url": saas.url, **config},
        credentials={"access_token": SHOPIFY_TOKEN, "app_secret": SHOPIFY_APP_SECRET},
    )


INVENTORY_ARGS = {
    "inventory_item_id": "gid://shopify/InventoryItem/9000",
    "location_id": "gid://shopify/Location/1",
    "quantity": 5,
}
