"""Orders and inventory writes as Shopify documents them: an order made safe to retry by its
key's tag (Shopify refuses @idempotent on orderCreate), stock claimed as the shop expects, and
inventory writes with compare-and-swap answering `conflict`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from integrations.shopify.orders import order_key_tag
from smarteros.errors import UpstreamError
from tests.integrations.shopify.helpers import (
    INVENTORY_ARGS,
    call,
    connect_shopify,
    graphql_requests,
)

pytestmark = pytest.mark.django_db(transaction=True)

VARIANT = "gid://shopify/ProductVariant/5000"  # Product 0's variant: 10 available
ORDER = {"line_items": [{"variant_id": VARIANT, "quantity": 2}], "email": "jon@example.com"}


@pytest.fixture(autouse=True)
def quick_retries(settings: Any) -> None:
    settings.EFFECT_RETRY_DELAYS = []  # a failed attempt stays as it is until called again


def stock(saas: Any, variant_id: str = VARIANT) -> int:
    return next(
        v["inventoryQuantity"]
        for p in saas.state.products
        for v in p["variants"]["nodes"]
        if v["id"] == variant_id
    )


def test_an_order_is_tagged_with_its_key_and_claims_stock(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("orders1")
    connect_shopify(tk.tenant, saas)
    made = call(tk, "shopify_create_order", {**ORDER, "idempotency_key": "order-1"})
    assert made.ok and made.output["effect"]["state"] == "done", made.output
    assert made.output["name"] == "#1001"
    assert made.output["effect"]["result"]["found_existing"] is False
    # First a look for an order already made with this key, then the create.
    [(_, create)] = graphql_requests(saas, "orderCreate")
    assert "@idempotent" not in create["query"]
    sent = create["variables"]
    key = sent["order"]["sourceIdentifier"]  # the effect's key, as the provider receives it
    assert key and sent["order"]["tags"] == [order_key_tag(key)]
    [(_, lookup)] = graphql_requests(saas, "query OrderByTag")
    assert lookup["variables"] == {"query": f'tag:"{order_key_tag(key)}"'}
    assert sent["options"] == {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}
    assert len(order_key_tag("x" * 200)) <= 40  # Shopify's limit for a tag
    assert stock(saas) == 8


def test_stock_is_left_alone_when_asked_or_by_the_setting(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    tk = make_tenant("orders2")
    connect_shopify(tk.tenant, saas)
    bypass = call(tk, "shopify_create_order", {**ORDER, "inventory_behaviour": "bypass"})
    assert bypass.output["effect"]["state"] == "done"
    assert stock(saas) == 10
    settings.SHOPIFY_ORDER_INVENTORY_BEHAVIOUR = "bypass"
    assert call(tk, "shopify_create_order", ORDER).output["effect"]["state"] == "done"
    assert stock(saas) == 10
    ignoring = call(
        tk, "shopify_create_order", {**ORDER, "inventory_behaviour": "decrement_ignoring_policy"}
    )
    assert ignoring.output["effect"]["state"] == "done"
    assert stock(saas) == 8
    behaviours = [b["variables"]["options"] for _, b in graphql_requests(saas, "orderCreate")]
    assert [b["inventoryBehaviour"] for b in behaviours] == [
        "BYPASS",
        "BYPASS",
        "DECREMENT_IGNORING_POLICY",
    ]
    wrong = call(tk, "shopify_create_order", {**ORDER, "inventory_behaviour": "decrement"})
    assert wrong.error is not None and wrong.error.code == "invalid_input"
    assert "inventory_behaviour" in wrong.error.message


def test_an_order_whose_answer_was_lost_is_found_on_retry_not_made_twice(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.EFFECT_RETRY_DELAYS = [1.0]
    tk = make_tenant("orders3")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.lose_answers_next = 1  # Shopify makes the order; its answer never comes
    args = {**ORDER, "idempotency_key": "order-lost"}
    first = call(tk, "shopify_create_order", args)
    assert first.output["effect"]["state"] == "pending", first.output
    assert first.output["effect"]["last_error"].startswith(
        "outcome_unknown: Shopify got the request"
    )
    assert len(saas.state.shopify.orders) == 1
    time.sleep(1.1)  # the retry's backoff
    retry = call(tk, "shopify_create_order", args)
    assert retry.output["effect"]["state"] == "done", retry.output
    assert retry.output["order_id"] == saas.state.shopify.orders[0]["id"]
    assert retry.output["effect"]["result"]["found_existing"] is True
    assert len(saas.state.shopify.orders) == 1  # one order, stock claimed once
    assert stock(saas) == 8
    assert len(graphql_requests(saas, "orderCreate")) == 1


def test_the_stand_in_refuses_idempotent_on_order_create_as_shopify_does(saas: Any) -> None:
    from integrations.shopify.client import ShopifyClient
    from tests.fixtures.saas import SHOPIFY_TOKEN

    client = ShopifyClient("s.myshopify.com", SHOPIFY_TOKEN, base_url=saas.url)
    document = """
    mutation OrderCreate($order: OrderCreateOrderInput!, $key: String!) {
      orderCreate(order: $order) @idempotent(key: $key) { order { id } userErrors { message } }
    }"""
    with pytest.raises(UpstreamError) as raised:
        client.graphql(document, {"order": {"lineItems": []}, "key": "k"})
    assert "@idempotent directive is not supported on orderCreate" in raised.value.message
    assert saas.state.shopify.orders == []


@pytest.mark.parametrize("version", ["2026-01", "2026-10"])
def test_an_expected_quantity_is_a_compare_and_swap(
    make_tenant: Any, saas: Any, version: str
) -> None:
    tk = make_tenant("cas" + version.replace("-", ""))
    connect_shopify(tk.tenant, saas, api_version=version)
    where = (INVENTORY_ARGS["inventory_item_id"], INVENTORY_ARGS["location_id"])
    saas.state.shopify.inventory[where] = 7
    done = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "expected_quantity": 7})
    assert done.output["effect"]["state"] == "done", done.output
    assert saas.state.shopify.inventory[where] == 5
    check = "changeFromQuantity" if version >= "2026-04" else "compareQuantity"
    [(_, sent)] = graphql_requests(saas, "inventorySetQuantities")
    assert sent["variables"]["input"]["quantities"][0][check] == 7
    # Someone sold one meanwhile: the write based on the old reading is refused, not applied.
    stale = call(
        tk, "shopify_update_inventory", {**INVENTORY_ARGS, "quantity": 9, "expected_quantity": 7}
    )
    effect = stale.output["effect"]
    assert (effect["state"], effect["attempts"]) == ("failed", 1)  # retrying cannot pass
    assert effect["last_error"].startswith("conflict: Shopify inventorySetQuantities: ")
    assert f"quantities.0.{check}" in effect["last_error"]
    assert saas.state.shopify.inventory[where] == 5
    negative = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "expected_quantity": -1})
    assert negative.error is not None and "expected_quantity" in negative.error.message
