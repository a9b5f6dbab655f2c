"""Shopify Admin GraphQL API client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.http import request_json
from mcp_tools.errors import UpstreamError

DEFAULT_API_VERSION = "2025-10"


@dataclass(frozen=True)
class ShopifyClient:
    shop_domain: str
    access_token: str
    api_version: str = DEFAULT_API_VERSION
    base_url: str = ""  # defaults to https://{shop_domain}; tests point it at a loopback server

    @property
    def endpoint(self) -> str:
        base = self.base_url.rstrip("/") or f"https://{self.shop_domain}"
        return f"{base}/admin/api/{self.api_version}/graphql.json"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = request_json(
            "Shopify",
            "POST",
            self.endpoint,
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": self.access_token},
        )
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in body["errors"])[:500]
            raise UpstreamError(f"Shopify GraphQL error: {messages}")
        return body.get("data") or {}


def raise_user_errors(payload: dict[str, Any], mutation: str) -> None:
    errors = payload.get("userErrors") or []
    if errors:
        text = "; ".join(f"{'.'.join(e.get('field') or [])}: {e.get('message')}" for e in errors)
        raise UpstreamError(f"Shopify rejected {mutation}: {text}")


PRODUCT_FIELDS = """
  id title handle status totalInventory updatedAt
  variants(first: 100) { nodes { id title sku price inventoryQuantity inventoryItem { id } } }
"""

PRODUCT_QUERY = f"query Product($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"

PRODUCTS_PAGE_QUERY = f"""
query ProductsPage($first: Int!, $after: String) {{
  products(first: $first, after: $after) {{
    nodes {{ {PRODUCT_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

# Writes carry Shopify's @idempotent directive: a retry with the same key is answered with the
# first attempt's result instead of being applied again.
INVENTORY_SET_MUTATION = """
mutation InventorySet($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""

ORDER_CREATE_MUTATION = """
mutation OrderCreate($order: OrderCreateOrderInput!, $idempotencyKey: String!) {
  orderCreate(order: $order) @idempotent(key: $idempotencyKey) {
    order { id name totalPriceSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}
"""
