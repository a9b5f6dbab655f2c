"""Shopify's outside effects: an order created, an inventory quantity set. Both mutations carry
Shopify's @idempotent directive with the effect's key."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from effects.registry import EffectCall, effect
from integrations.connections import connection_credentials, connection_require
from integrations.shopify.client import (
    INVENTORY_SET_MUTATION,
    ORDER_CREATE_MUTATION,
    ShopifyClient,
    raise_user_errors,
)
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant


def shopify_client_for(*, tenant: Tenant) -> ShopifyClient:
    connection = connection_require(tenant=tenant, provider="shopify")
    credentials = connection_credentials(connection)
    config = connection.config
    return ShopifyClient(
        shop_domain=config["shop_domain"],
        access_token=credentials["access_token"],
        api_version=config.get("api_version") or "2025-10",
        base_url=config.get("api_base_url", ""),
    )


def _emit(call: EffectCall, topic: str, event_type: str, key: str, data: dict[str, Any]) -> None:
    tenant_event_emit(
        tenant=call.tenant,
        topic=topic,
        event_type=event_type,
        data=data,
        key=key,
        source="integrations.shopify",
        trace_id=call.trace_id,
    )


class CreateOrderPayload(BaseModel):
    order: dict[str, Any]  # OrderCreateOrderInput


def _orders_created(done: list[tuple[EffectCall, dict[str, Any]]]) -> None:
    for call, result in done:
        _emit(
            call,
            "shopify.webhooks",
            "shopify.order.created",
            result["order_id"],
            {"order_id": result["order_id"], "name": result["name"]},
        )


@effect("shopify.create_order", payload=CreateOrderPayload, on_done=_orders_created)
def create_order(call: EffectCall) -> dict[str, Any]:
    data = call.client("shopify", lambda: shopify_client_for(tenant=call.tenant)).graphql(
        ORDER_CREATE_MUTATION,
        {"order": call.payload.order, "idempotencyKey": call.idempotency_key},
    )
    payload = data.get("orderCreate") or {}
    raise_user_errors(payload, "orderCreate")
    created = payload.get("order") or {}
    money = ((created.get("totalPriceSet") or {}).get("shopMoney")) or {}
    return {
        "order_id": created.get("id", ""),
        "name": created.get("name", ""),
        "total": str(money.get("amount", "0")),
        "currency": money.get("currencyCode", ""),
    }


class SetInventoryPayload(BaseModel):
    inventory_item_id: str
    location_id: str
    quantity: int
    reason: str


def _inventory_set(done: list[tuple[EffectCall, dict[str, Any]]]) -> None:
    for call, _ in done:
        p: SetInventoryPayload = call.payload
        _emit(
            call,
            "shopify.inventory",
            "shopify.inventory.set",
            p.inventory_item_id,
            {"location_id": p.location_id, "quantity": p.quantity, "reason": p.reason},
        )


@effect("shopify.update_inventory", payload=SetInventoryPayload, on_done=_inventory_set)
def update_inventory(call: EffectCall) -> dict[str, Any]:
    p: SetInventoryPayload = call.payload
    data = call.client("shopify", lambda: shopify_client_for(tenant=call.tenant)).graphql(
        INVENTORY_SET_MUTATION,
        {
            "input": {
                "name": "available",
                "reason": p.reason,
                "ignoreCompareQuantity": True,
                "quantities": [
                    {
                        "inventoryItemId": p.inventory_item_id,
                        "locationId": p.location_id,
                        "quantity": p.quantity,
                    }
                ],
            },
            "idempotencyKey": call.idempotency_key,
        },
    )
    payload = data.get("inventorySetQuantities") or {}
    raise_user_errors(payload, "inventorySetQuantities")
    group = payload.get("inventoryAdjustmentGroup") or {}
    return {"adjustment_group_id": group.get("id", "")}
