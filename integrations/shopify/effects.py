"""Shopify's outside effects: an order created (safe to retry through its key's tag, see
orders.py), an inventory quantity set (with Shopify's @idempotent directive and the effect's
key, and compare-and-swap when the caller gave the quantity it expects)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from effects.registry import EffectCall, effect
from integrations.connections import connection_credentials, connection_require
from integrations.shopify.client import (
    INVENTORY_SET_MUTATION,
    ShopifyClient,
    inventory_set_input,
    raise_user_errors,
)
from integrations.shopify.orders import InventoryBehaviour, order_create_once
from integrations.shopify.versions import api_version_check
from smarteros.errors import NotConnected
from smarteros.events.outbox import tenant_event_emit
from tenants.models import Tenant


def shopify_client_for(*, tenant: Tenant) -> ShopifyClient:
    """A client for the tenant's connected shop, at the connection's API version."""
    connection = connection_require(tenant=tenant, provider="shopify")
    return shopify_client_of(connection.config, connection_credentials(connection))


def shopify_client_of(config: dict[str, Any], credentials: dict[str, str]) -> ShopifyClient:
    """A client from a connection's settings and decrypted credentials. A version saved before
    it left the supported list is refused, naming the setting, rather than sent to Shopify."""
    try:
        version = api_version_check(config.get("api_version"))
    except ValueError as exc:
        raise NotConnected(f"the Shopify connection's {exc}; an operator updates it") from None
    return ShopifyClient(
        shop_domain=config["shop_domain"],
        access_token=credentials["access_token"],
        api_version=version,
        base_url=config.get("api_base_url", ""),
    )


def _cost(client: ShopifyClient) -> float | None:
    return client.last_cost.actual if client.last_cost else None


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
    # Orders recorded before stock was claimed left it as it was.
    inventory_behaviour: InventoryBehaviour = "bypass"


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
    client = call.client("shopify", lambda: shopify_client_for(tenant=call.tenant))
    created, found = order_create_once(
        client,
        order=call.payload.order,
        idempotency_key=call.idempotency_key,
        inventory_behaviour=call.payload.inventory_behaviour,
    )
    money = ((created.get("totalPriceSet") or {}).get("shopMoney")) or {}
    return {
        "order_id": created.get("id", ""),
        # Shopify's numeric order id passes 2^53: kept as the decimal string Shopify sends.
        "legacy_id": str(created.get("legacyResourceId") or ""),
        "name": created.get("name", ""),
        "total": str(money.get("amount", "0")),
        "currency": money.get("currencyCode", ""),
        # True when an earlier attempt had created it (its answer was lost): not created again.
        "found_existing": found,
        "query_cost": _cost(client),
    }


class SetInventoryPayload(BaseModel):
    inventory_item_id: str
    location_id: str
    quantity: int
    reason: str
    # The quantity the caller expects Shopify to hold: set only if it still does (None: set).
    expected_quantity: int | None = None


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
    client = call.client("shopify", lambda: shopify_client_for(tenant=call.tenant))
    data = client.graphql(
        INVENTORY_SET_MUTATION,
        {
            "input": inventory_set_input(
                client.api_version,
                inventory_item_id=p.inventory_item_id,
                location_id=p.location_id,
                quantity=p.quantity,
                reason=p.reason,
                change_from_quantity=p.expected_quantity,
            ),
            "idempotencyKey": call.idempotency_key,
        },
    )
    payload = data.get("inventorySetQuantities") or {}
    raise_user_errors(payload, "inventorySetQuantities", argument="input")
    group = payload.get("inventoryAdjustmentGroup") or {}
    return {"adjustment_group_id": group.get("id", ""), "query_cost": _cost(client)}
