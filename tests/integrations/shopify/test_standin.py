"""The Shopify stand-in answers as Shopify does: documents validated against the version's
Admin schema, Shopify's error shapes, a leaky-bucket extensions.cost on every answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from integrations.shopify.client import ShopifyClient
from smarteros.errors import UpstreamError
from tests.fixtures.saas import SHOPIFY_TOKEN


def post(saas: Any, version: str, body: Any, token: str = SHOPIFY_TOKEN) -> httpx.Response:
    return httpx.post(
        f"{saas.url}/admin/api/{version}/graphql.json",
        json=body,
        headers={"X-Shopify-Access-Token": token},
    )


def test_a_field_the_schema_lacks_gets_shopifys_error_and_the_client_raises(saas: Any) -> None:
    query = 'query { product(id: "gid://shopify/Product/1000") { id colour } }'
    answer = post(saas, "2026-10", {"query": query})
    assert answer.status_code == 200  # Shopify answers GraphQL errors with 200
    [error] = answer.json()["errors"]
    assert error["message"] == "Cannot query field 'colour' on type 'Product'."
    assert error["locations"] == [{"line": 1, "column": 56}]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    client = ShopifyClient("s.myshopify.com", SHOPIFY_TOKEN, base_url=saas.url)
    with pytest.raises(UpstreamError, match="Cannot query field 'colour' on type 'Product'"):
        client.graphql(query)


def test_a_document_that_does_not_parse_is_refused(saas: Any) -> None:
    [error] = post(saas, "2026-10", {"query": "query { shop { name "}).json()["errors"]
    assert error["message"].startswith("Syntax Error")
    assert error["extensions"]["code"] == "PARSE_ERROR"


def test_variables_are_coerced_by_the_schemas_input_types(saas: Any) -> None:
    query = "query Product($id: ID!) { product(id: $id) { id } }"
    [error] = post(saas, "2026-10", {"query": query, "variables": {}}).json()["errors"]
    assert error["message"].startswith("Variable '$id' has invalid value")
    assert error["extensions"]["code"] == "INVALID_VARIABLE"


def test_answers_carry_the_cost_and_the_version_used(saas: Any) -> None:
    answer = post(saas, "2026-07", {"query": "query ShopInfo { shop { name myshopifyDomain } }"})
    assert answer.headers["X-Shopify-API-Version"] == "2026-07"
    body = answer.json()
    assert body["data"]["shop"] == {
        "name": "Stand-in Shop",
        "myshopifyDomain": "stand-in.myshopify.com",
    }
    throttle = body["extensions"]["cost"]["throttleStatus"]
    assert set(throttle) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert body["extensions"]["cost"]["actualQueryCost"] > 0
    # An unsupported version falls forward to the oldest supported one, as Shopify does.
    old = post(saas, "2024-01", {"query": "{ shop { name } }"})
    assert old.headers["X-Shopify-API-Version"] == "2026-01"


def test_a_wrong_token_is_401(saas: Any) -> None:
    answer = post(saas, "2026-10", {"query": "{ shop { name } }"}, token="shpat_wrong")
    assert answer.status_code == 401
    assert answer.json() == {"errors": "[API] Invalid API key or access token"}


def test_a_bulk_query_the_schema_refuses_is_a_user_error(saas: Any) -> None:
    from integrations.shopify.sync import BULK_RUN_MUTATION

    body = post(
        saas,
        "2026-10",
        {
            "query": BULK_RUN_MUTATION,
            "variables": {"query": "{ products { edges { node { x } } } }"},
        },
    ).json()
    payload = body["data"]["bulkOperationRunQuery"]
    assert payload["bulkOperation"] is None
    assert payload["userErrors"] == [
        {"field": ["query"], "message": "Cannot query field 'x' on type 'Product'."}
    ]
