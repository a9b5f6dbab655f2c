"""Cost-aware calls: extensions.cost read and reported, THROTTLED answers and HTTP 429 waited out
within a bound, then a rate-limited error that says when to retry (never a generic 502)."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from effects.models import Effect
from tenants.scope import dangerously_unscoped
from tests.integrations.shopify.helpers import (
    INVENTORY_ARGS,
    call,
    connect_shopify,
    graphql_requests,
)

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCT = {"product_id": "gid://shopify/Product/1000"}


def test_a_throttled_query_is_retried_after_the_restore_time(
    make_tenant: Any, saas: Any, caplog: Any
) -> None:
    tk = make_tenant("throttle1")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.throttle_next = 2
    with caplog.at_level(logging.INFO, logger="integrations.shopify.client"):
        result = call(tk, "shopify_get_product", {**PRODUCT, "fresh": True})
    assert result.ok, result.error
    assert result.output["id"] == "gid://shopify/Product/1000"
    assert len(graphql_requests(saas, "query Product(")) == 3
    # The THROTTLED answer's cost is what the wait was computed from, and it is logged.
    assert "shopify throttled the query (THROTTLED): it costs" in caplog.text
    assert "restored per second" in caplog.text
    assert "shopify cost throttle1.myshopify.com: requested" in caplog.text


def test_still_throttled_after_the_retries_is_a_rate_limit_with_retry_after(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.SHOPIFY_THROTTLE_RETRIES = 2
    tk = make_tenant("throttle2")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.throttle_next = 10
    result = call(tk, "shopify_get_product", {**PRODUCT, "fresh": True})
    assert result.error is not None
    assert (result.error.code, result.error.http_status) == ("upstream_rate_limited", 429)
    assert result.error.retry_after >= 1
    assert "Shopify rate limit: shop throttle2.myshopify.com throttled the query" in (
        result.error.message
    )
    assert result.error.message.endswith(f"retry after {result.error.retry_after}s")
    assert len(graphql_requests(saas, "query Product(")) == 3  # first try and two retries


def test_http_429_is_waited_out_with_retry_after(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("throttle3")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.http_429_next = 1
    saas.state.shopify.retry_after = "0.5"
    started = time.monotonic()
    result = call(tk, "shopify_get_product", {**PRODUCT, "fresh": True})
    assert result.ok, result.error
    assert time.monotonic() - started >= 0.5
    assert len(graphql_requests(saas, "query Product(")) == 2


def test_a_retry_after_beyond_the_bound_is_not_waited_but_reported(
    make_tenant: Any, saas: Any
) -> None:
    tk = make_tenant("throttle4")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.http_429_next = 1
    saas.state.shopify.retry_after = "30"
    started = time.monotonic()
    result = call(tk, "shopify_get_product", {**PRODUCT, "fresh": True})
    assert time.monotonic() - started < 5
    assert result.error is not None and result.error.code == "upstream_rate_limited"
    assert result.error.retry_after == 30
    assert "answered HTTP 429; retry after 30s" in result.error.message


def test_a_throttled_write_stays_pending_to_be_retried_and_reports_its_cost(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.SHOPIFY_THROTTLE_RETRIES = 0
    tk = make_tenant("throttle5")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.throttle_next = 1
    throttled = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "idempotency_key": "t1"})
    assert throttled.ok
    effect = throttled.output["effect"]
    assert effect["state"] == "pending"  # a rate limit may pass: the workers retry it
    assert effect["last_error"].startswith("upstream_rate_limited: Shopify rate limit")
    # Its retry, once due (made due here), waits out the bucket's restore time and is done.
    settings.SHOPIFY_THROTTLE_RETRIES = 3
    with dangerously_unscoped():
        Effect.objects.filter(pk=effect["effect_id"]).update(not_before="2000-01-01T00:00Z")
    again = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "idempotency_key": "t1"})
    assert again.output["effect"]["effect_id"] == effect["effect_id"]
    assert again.output["effect"]["state"] == "done"
    assert again.output["effect"]["result"]["query_cost"] > 0  # the mutation's actualQueryCost
    assert again.output["adjustment_group_id"] == "gid://shopify/InventoryAdjustmentGroup/1"


def test_rest_answers_429_with_retry_after(web_server: str, make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("throttle6")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.throttle_next = 100
    response = httpx.post(
        f"{web_server}/api/v1/shopify/get_product",
        json={**PRODUCT, "fresh": True},
        headers={"Authorization": f"Bearer {tk.key}"},
        timeout=30,
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["code"] == "upstream_rate_limited"
