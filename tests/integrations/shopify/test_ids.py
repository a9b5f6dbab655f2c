"""Shopify ids leave SmarterOS as strings: global ids as they are, numeric ids as decimal
strings (an order id passes 2^53, where a JSON number loses digits in JavaScript)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integrations.shopify.helpers import call, connect_shopify, graphql_requests

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_created_orders_numeric_id_is_an_exact_string(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("bigids")
    connect_shopify(tk.tenant, saas)
    result = call(
        tk,
        "shopify_create_order",
        {
            "line_items": [{"variant_id": "gid://shopify/ProductVariant/5000", "quantity": 2}],
            "idempotency_key": "order-1",
        },
    )
    assert result.ok, result.error
    out = result.output
    assert out["order_id"] == "gid://shopify/Order/777"
    assert out["legacy_id"] == "820982911946154509"
    assert int(out["legacy_id"]) > 2**53
    assert out["effect"]["result"]["legacy_id"] == "820982911946154509"
    # What a client receives as JSON carries it as a string, digit for digit.
    assert '"legacy_id": "820982911946154509"' in json.dumps(out)
    [(_, body)] = graphql_requests(saas, "orderCreate")
    assert "legacyResourceId" in body["query"]
