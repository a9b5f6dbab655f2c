from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from mcp_tools.schemas import Output


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
