from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from integrations.payloads import model_parse
from mcp_tools.schemas import Output

ShopDomain = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$", strip_whitespace=True, to_lower=True
    ),
    Field(
        description="The shop's myshopify.com domain, as Shopify sends it in X-Shopify-Shop-Domain.",
        examples=["acme.myshopify.com"],
    ),
]
# Shopify names most topics resource/event, some resource.event (customer.tags_added).
WEBHOOK_TOPIC_PATTERN = r"^[a-z][a-z_]*(?:[/.][a-z][a-z_]*){1,3}$"
WebhookTopic = Annotated[
    str,
    StringConstraints(pattern=WEBHOOK_TOPIC_PATTERN, max_length=100),
    Field(
        description="Shopify webhook topic, e.g. orders/create, products/update or "
        "customer.tags_added."
    ),
]
WebhookId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,255}$"),
    Field(description="The X-Shopify-Webhook-Id of the delivery; Shopify's retries repeat it."),
]

# The delivery's fields, by the header that carries each.
DELIVERY_HEADERS = {
    "topic": "X-Shopify-Topic",
    "webhook_id": "X-Shopify-Webhook-Id",
    "shop_domain": "X-Shopify-Shop-Domain",
}


class ShopifyDelivery(BaseModel):
    """One webhook delivery: its identifying headers and its JSON object body."""

    model_config = ConfigDict(extra="forbid")

    topic: WebhookTopic
    webhook_id: WebhookId
    shop_domain: ShopDomain
    payload: dict[str, Any]


def shopify_delivery_parse(headers: Mapping[str, str], payload: Any) -> ShopifyDelivery:
    """The delivery from its headers and parsed body; BadPayload names a missing or bad header."""
    fields = {name: headers.get(header) for name, header in DELIVERY_HEADERS.items()}
    return model_parse(
        ShopifyDelivery,
        {**{k: v for k, v in fields.items() if v is not None}, "payload": payload},
        names={**DELIVERY_HEADERS, "payload": "body"},
    )


def shopify_gid(resource: str) -> object:
    return Annotated[
        str,
        StringConstraints(pattern=rf"^gid://shopify/{resource}/[0-9]{{1,20}}$"),
        Field(
            description=f"Shopify global id of a {resource}, e.g. gid://shopify/{resource}/1234567890.",
            examples=[f"gid://shopify/{resource}/1234567890"],
        ),
    ]


ProductGid = shopify_gid("Product")
VariantGid = shopify_gid("ProductVariant")
InventoryItemGid = shopify_gid("InventoryItem")
LocationGid = shopify_gid("Location")


class VariantOut(Output):
    id: str = Field(description="Variant global id.")
    title: str = Field(description="Variant title.")
    sku: str = Field(description="Stock keeping unit; empty if none.")
    price: str = Field(description="Price as a decimal string in the shop currency.")
    inventory_quantity: int = Field(description="Units available across locations.")
    inventory_item_id: str = Field(description="Inventory item global id, for inventory updates.")


class ProductOut(Output):
    id: str = Field(description="Product global id.")
    title: str = Field(description="Product title.")
    handle: str = Field(description="URL handle.")
    status: str = Field(description="ACTIVE, ARCHIVED or DRAFT.")
    total_inventory: int = Field(description="Units available across all variants.")
    variants: list[VariantOut] = Field(description="The product's variants (first 100).")


def product_from_graphql(node: dict) -> ProductOut:  # type: ignore[type-arg]
    return ProductOut(
        id=node["id"],
        title=node.get("title") or "",
        handle=node.get("handle") or "",
        status=node.get("status") or "",
        total_inventory=int(node.get("totalInventory") or 0),
        variants=[
            VariantOut(
                id=v["id"],
                title=v.get("title") or "",
                sku=v.get("sku") or "",
                price=str(v.get("price") or "0"),
                inventory_quantity=int(v.get("inventoryQuantity") or 0),
                inventory_item_id=(v.get("inventoryItem") or {}).get("id", ""),
            )
            for v in (node.get("variants") or {}).get("nodes", [])
        ],
    )
