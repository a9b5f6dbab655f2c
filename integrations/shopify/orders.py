"""Orders created in the tenant's shop, safe to retry by what Shopify documents.

Shopify's `@idempotent` directive covers inventory, refund and fulfilment mutations, not
`orderCreate`: a retried create after a timeout would make a second order. So each order
carries a tag derived from the effect's idempotency key (and the key as its `sourceIdentifier`),
and every attempt first looks the tag up with the `orders(query: "tag:...")` search; an order
found is the one an earlier attempt made, and is returned instead of creating another.

Limit: Shopify's order search is indexed asynchronously (normally within seconds), so a retry
made in the same few seconds as a create whose answer was lost might not see it yet; the
effects' first retry waits EFFECT_RETRY_DELAYS[0] (2 s by default) before trying again.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from integrations.shopify.client import ShopifyClient, raise_user_errors

# How a created order claims stock: Shopify's OrderCreateInputsInventoryBehavior, lower-cased.
# Shopify's own default, bypass, leaves stock untouched, which no shop expects from an order; the
# platform's default is the setting SHOPIFY_ORDER_INVENTORY_BEHAVIOUR.
InventoryBehaviour = Literal["bypass", "decrement_ignoring_policy", "decrement_obeying_policy"]

ORDER_FIELDS = """
  id legacyResourceId name tags sourceIdentifier
  totalPriceSet { shopMoney { amount currencyCode } }
"""

ORDER_CREATE_MUTATION = f"""
mutation OrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {{
  orderCreate(order: $order, options: $options) {{
    order {{ {ORDER_FIELDS} }}
    userErrors {{ code field message }}
  }}
}}
"""

ORDER_BY_TAG_QUERY = f"""
query OrderByTag($query: String!) {{
  orders(first: 1, query: $query) {{ nodes {{ {ORDER_FIELDS} }} }}
}}
"""


def order_key_tag(idempotency_key: str) -> str:
    """The tag that marks the order made for `idempotency_key`: a digest, since order tags are
    at most 40 characters and the search must match it exactly."""
    return "smarteros-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def order_find(client: ShopifyClient, *, idempotency_key: str) -> dict[str, Any] | None:
    """The order an earlier attempt made for `idempotency_key`, or None."""
    tag = order_key_tag(idempotency_key)
    data = client.graphql(ORDER_BY_TAG_QUERY, {"query": f'tag:"{tag}"'})
    nodes = ((data.get("orders") or {}).get("nodes")) or []
    # The search matches words; only an order carrying the exact tag is ours.
    return next((n for n in nodes if tag in (n.get("tags") or [])), None)


def order_create_once(
    client: ShopifyClient,
    *,
    order: dict[str, Any],
    idempotency_key: str,
    inventory_behaviour: InventoryBehaviour,
) -> tuple[dict[str, Any], bool]:
    """(the order, True if an earlier attempt had made it). Creates it, tagged with the key,
    unless the shop already has the order tagged so."""
    found = order_find(client, idempotency_key=idempotency_key)
    if found is not None:
        return found, True
    tagged = {
        **order,
        "tags": [*(order.get("tags") or []), order_key_tag(idempotency_key)],
        "sourceIdentifier": idempotency_key,
    }
    data = client.graphql(
        ORDER_CREATE_MUTATION,
        {"order": tagged, "options": {"inventoryBehaviour": inventory_behaviour.upper()}},
    )
    payload = data.get("orderCreate") or {}
    raise_user_errors(payload, "orderCreate", argument="order")
    return payload.get("order") or {}, False
