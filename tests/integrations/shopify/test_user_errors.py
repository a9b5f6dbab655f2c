"""userErrors of Shopify's mutations become errors that name the field (never a 502): the
caller's input is invalid_input, stale data a conflict, a concurrent repeat retried."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.shopify.client import raise_user_errors
from smarteros.errors import Conflict, InvalidInput, UpstreamError
from tests.integrations.shopify.helpers import (
    INVENTORY_ARGS,
    call,
    connect_shopify,
    graphql_requests,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_inventory_user_error_fails_the_write_naming_the_field(
    make_tenant: Any, saas: Any
) -> None:
    tk = make_tenant("usererr1")
    connect_shopify(tk.tenant, saas)
    # As documented for InventorySetQuantitiesUserError: code, field path, message.
    saas.state.shopify.user_errors_next = [
        {
            "code": "INVALID_INVENTORY_ITEM",
            "field": ["input", "quantities", "0", "inventoryItemId"],
            "message": "The specified inventory item could not be found.",
        }
    ]
    result = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "idempotency_key": "u1"})
    effect = result.output["effect"]
    assert effect["state"] == "failed" and effect["attempts"] == 1  # not retried: it cannot pass
    assert effect["last_error"] == (
        "invalid_input: quantities.0.inventoryItemId: "
        "The specified inventory item could not be found."
    )


def test_a_stale_change_from_quantity_is_a_conflict(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("usererr2")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.user_errors_next = [
        {
            "code": "CHANGE_FROM_QUANTITY_STALE",
            "field": ["input", "quantities", "0", "changeFromQuantity"],
            "message": "The changeFromQuantity value does not match persisted value.",
        }
    ]
    result = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "idempotency_key": "u2"})
    assert result.output["effect"]["state"] == "failed"
    assert result.output["effect"]["last_error"] == (
        "conflict: Shopify inventorySetQuantities: quantities.0.changeFromQuantity: "
        "The changeFromQuantity value does not match persisted value."
    )


def test_an_order_user_error_names_the_line(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("usererr3")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.user_errors_next = [
        {
            "code": "VARIANT_NOT_FOUND",
            "field": ["order", "lineItems", "0", "variantId"],
            "message": "Variant not found.",
        }
    ]
    result = call(
        tk,
        "shopify_create_order",
        {"line_items": [{"variant_id": "gid://shopify/ProductVariant/1", "quantity": 1}]},
    )
    assert result.ok
    assert result.output["effect"]["state"] == "failed"
    assert result.output["effect"]["last_error"] == (
        "invalid_input: lineItems.0.variantId: Variant not found."
    )


def test_the_stand_in_itself_requires_change_from_quantity_from_2026_04(saas: Any) -> None:
    """A quantity without changeFromQuantity gets Shopify's userError, mapped to the field."""
    from integrations.shopify.client import INVENTORY_SET_MUTATION, ShopifyClient
    from tests.fixtures.saas import SHOPIFY_TOKEN

    client = ShopifyClient(
        "s.myshopify.com", SHOPIFY_TOKEN, api_version="2026-07", base_url=saas.url
    )
    item = {
        "inventoryItemId": "gid://shopify/InventoryItem/9000",
        "locationId": "gid://shopify/Location/1",
        "quantity": 3,
    }
    data = client.graphql(
        INVENTORY_SET_MUTATION,
        {
            "input": {"name": "available", "reason": "correction", "quantities": [item]},
            "idempotencyKey": "no-change-from",
        },
    )
    with pytest.raises(InvalidInput) as raised:
        raise_user_errors(
            data["inventorySetQuantities"], "inventorySetQuantities", argument="input"
        )
    assert raised.value.message.startswith("quantities.0.changeFromQuantity: ")
    assert raised.value.details[0]["field"] == "quantities.0.changeFromQuantity"
    # With the persisted quantity as changeFromQuantity the set goes through; a stale one not.
    ok = client.graphql(
        INVENTORY_SET_MUTATION,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [{**item, "changeFromQuantity": 0}],
            },
            "idempotencyKey": "change-from-0",
        },
    )
    assert ok["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"][0]["delta"] == 3
    stale = client.graphql(
        INVENTORY_SET_MUTATION,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [{**item, "changeFromQuantity": 0}],
            },
            "idempotencyKey": "change-from-stale",
        },
    )
    with pytest.raises(Conflict, match="does not match persisted value"):
        raise_user_errors(
            stale["inventorySetQuantities"], "inventorySetQuantities", argument="input"
        )
    assert len(graphql_requests(saas, "inventorySetQuantities")) == 3


def test_a_concurrent_repeat_of_a_key_may_pass_and_is_retried() -> None:
    payload = {
        "userErrors": [
            {
                "code": "IDEMPOTENCY_CONCURRENT_REQUEST",
                "field": None,
                "message": "This request is currently in progress, please try again.",
            }
        ]
    }
    with pytest.raises(UpstreamError) as raised:
        raise_user_errors(payload, "inventorySetQuantities", argument="input")
    assert type(raised.value) is UpstreamError
    assert "currently in progress" in raised.value.message
