"""sync_products as a Shopify bulk operation: the JSONL result streamed into the compacted
shopify.products topic, the sync resumable from its checkpoint, visible as an effect."""

from __future__ import annotations

import json
from typing import Any

import pytest

from effects.models import Effect
from effects.services import effect_perform
from integrations.shopify.sync import (
    SYNC_KIND,
    Observer,
    product_cache_key,
    sync_observe,
    sync_unobserve,
)
from smarteros.infra.redis import get_redis
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.fixtures.saas import make_products
from tests.integrations.shopify.helpers import call, connect_shopify, graphql_requests

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick(settings: Any) -> None:
    settings.SHOPIFY_BULK_POLL_SECONDS = 0.01
    # No automatic retry: a failed attempt stays failed until the caller calls again. (With
    # retries, the tests' eager Celery would retry at once, in the same call.)
    settings.EFFECT_RETRY_DELAYS = []


def snapshots(tenant: Any) -> list[dict[str, Any]]:
    """The product events queued for the tenant's shopify.products topic, oldest first."""
    with dangerously_unscoped():
        events = OutboxEvent.objects.filter(
            tenant_id=tenant.pk, topic=f"{tenant.slug}.shopify.products"
        ).order_by("id")
        return [{"key": e.key, **json.loads(e.payload)} for e in events]


def latest_by_key(tenant: Any) -> dict[str, dict[str, Any]]:
    """What the compacted topic keeps: the last snapshot of each product."""
    return {s["key"]: s["data"] for s in snapshots(tenant)}


def test_the_catalogue_is_exported_in_bulk_and_fills_the_compacted_topic(
    make_tenant: Any, saas: Any
) -> None:
    tk = make_tenant("bulk1")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.bulk_polls = 3
    result = call(tk, "shopify_sync_products", {})
    assert result.ok, result.error
    out = result.output
    assert (out["synced"], out["complete"]) == (7, True)
    assert out["bulk_operation_id"] == "gid://shopify/BulkOperation/1"
    assert out["effect"]["kind"] == SYNC_KIND and out["effect"]["state"] == "done"
    assert out["effect"]["result"]["objects"] == 14  # 7 products and their 7 variants
    assert out["effect"]["result"]["query_cost"] > 0
    # One export, polled until done; no page-by-page product queries.
    [(_, run)] = graphql_requests(saas, "bulkOperationRunQuery")
    assert "products {" in run["variables"]["query"]
    assert len(graphql_requests(saas, "query BulkOperation")) == 4
    assert graphql_requests(saas, "products(first") == []
    products = latest_by_key(tk.tenant)
    assert len(products) == 7 and len(snapshots(tk.tenant)) == 7
    first = products["gid://shopify/Product/1000"]
    assert first["id"] == "gid://shopify/Product/1000"  # global ids stay strings
    assert first["variants"] == [
        {
            "id": "gid://shopify/ProductVariant/5000",
            "title": "Default",
            "sku": "SKU-0",
            "price": "19.90",
            "inventory_quantity": 10,
            "inventory_item_id": "gid://shopify/InventoryItem/9000",
        }
    ]
    cached = get_redis().get(product_cache_key(tk.tenant.slug, "gid://shopify/Product/1006"))
    assert cached is not None and json.loads(cached)["title"] == "Product 6"


def with_variants(products: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The products, each with `count` variants."""
    for product in products:
        first = product["variants"]["nodes"][0]
        number = product["id"].rsplit("/", 1)[1]
        product["variants"]["nodes"] = [
            {**first, "id": f"gid://shopify/ProductVariant/{number}{v}", "sku": f"{number}-{v}"}
            for v in range(count)
        ]
    return products


def test_ungrouped_output_with_variants_anywhere_reaches_every_product(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    """From 2026-01 the export is ungrouped: a variant may come before its product or far
    after it; every product still gets all its variants."""
    settings.SHOPIFY_SYNC_BATCH_SIZE = 2
    tk = make_tenant("bulk2")
    connect_shopify(tk.tenant, saas)
    with_variants(saas.state.products, 3)
    result = call(tk, "shopify_sync_products", {})
    assert result.ok and result.output["synced"] == 7
    [(_, run)] = graphql_requests(saas, "bulkOperationRunQuery")
    assert "groupObjects: false" in run["query"]
    lines = [json.loads(line) for line in saas.state.shopify.jsonl(1)]
    first_child = next(i for i, o in enumerate(lines) if "__parentId" in o)
    parent = next(i for i, o in enumerate(lines) if o["id"] == lines[first_child]["__parentId"])
    assert first_child < parent  # the file really lists a variant before its product
    products = latest_by_key(tk.tenant)
    assert len(products) == 7
    for product_id, product in products.items():
        number = product_id.rsplit("/", 1)[1]
        assert sorted(v["sku"] for v in product["variants"]) == [f"{number}-{v}" for v in range(3)]
    assert result.output["effect"]["result"]["orphans"] == 0
    assert result.output["effect"]["result"]["objects"] == 28


def test_ten_thousand_products_ungrouped_all_keep_their_variants(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.SHOPIFY_SYNC_BATCH_SIZE = 1000
    tk = make_tenant("bulk10k")
    connect_shopify(tk.tenant, saas)
    saas.state.products = with_variants(make_products(10_000), 2)
    result = call(tk, "shopify_sync_products", {})
    assert result.ok and result.output["complete"] is True, result.output
    assert result.output["synced"] == 10_000
    assert result.output["effect"]["result"]["orphans"] == 0
    products = latest_by_key(tk.tenant)
    assert len(products) == 10_000 and len(snapshots(tk.tenant)) == 10_000
    assert all(len(p["variants"]) == 2 for p in products.values())
    last = products["gid://shopify/Product/10999"]
    assert sorted(v["id"] for v in last["variants"]) == [
        "gid://shopify/ProductVariant/109990",
        "gid://shopify/ProductVariant/109991",
    ]


def test_an_interrupted_download_is_loaded_again_from_the_same_export(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.SHOPIFY_SYNC_BATCH_SIZE = 2
    tk = make_tenant("bulk3")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.jsonl_cut_after = 7  # the connection drops halfway through the file
    first = call(tk, "shopify_sync_products", {})
    assert first.ok
    assert first.output["complete"] is False
    assert first.output["effect"]["state"] == "failed"
    assert "Shopify is unreachable" in first.output["effect"]["last_error"]
    # A variant may be the file's last line: nothing is written from half a file.
    assert first.output["synced"] == 0 and snapshots(tk.tenant) == []
    # Calling again (no key) resumes the unfinished sync: same export, downloaded again.
    second = call(tk, "shopify_sync_products", {})
    assert second.ok and second.output["complete"] is True
    assert second.output["effect"]["effect_id"] == first.output["effect"]["effect_id"]
    assert second.output["synced"] == 7
    assert len(graphql_requests(saas, "bulkOperationRunQuery")) == 1
    keys = [s["key"] for s in snapshots(tk.tenant)]
    assert len(keys) == 7 and len(set(keys)) == 7


def test_a_sync_stopped_while_writing_resumes_after_the_products_written(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    """The checkpoint commits with each batch: a sync stopped after two batches writes only
    the remaining products when it resumes."""
    settings.SHOPIFY_SYNC_BATCH_SIZE = 2
    tk = make_tenant("bulk6")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.jsonl_cut_after = 0  # a first attempt that downloads nothing
    first = call(tk, "shopify_sync_products", {})
    effect_id = first.output["effect"]["effect_id"]

    class Stop(Exception):
        pass

    def stop_after_two_batches(done: float, total: float | None, message: str | None) -> None:
        if done >= 4:
            raise Stop("the worker stops here")

    with tenant_scope(tk.tenant.pk):
        Effect.objects.filter(pk=effect_id).update(state=Effect.State.PENDING, attempts=0)
    token = sync_observe(Observer(stop_after_two_batches, lambda: None))
    try:
        effect_perform(effect_id=effect_id, tenant_id=tk.tenant.pk)
    finally:
        sync_unobserve(token)
    assert len(snapshots(tk.tenant)) == 4
    resumed = call(tk, "shopify_sync_products", {})
    assert resumed.output["complete"] is True and resumed.output["synced"] == 7
    assert resumed.output["effect"]["effect_id"] == effect_id
    keys = [s["key"] for s in snapshots(tk.tenant)]
    assert len(keys) == 7 and len(set(keys)) == 7  # the first four were not written again
    assert len(graphql_requests(saas, "bulkOperationRunQuery")) == 1


def test_a_failed_export_is_started_again_on_the_next_attempt(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("bulk4")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.bulk_fail = True
    failed = call(tk, "shopify_sync_products", {"idempotency_key": "nightly-2026-11-29"})
    assert failed.output["effect"]["state"] == "failed"
    assert failed.output["effect"]["last_error"] == (
        "upstream_error: Shopify bulk operation gid://shopify/BulkOperation/1 ended FAILED "
        "(INTERNAL_SERVER_ERROR)"
    )
    saas.state.shopify.bulk_fail = False
    again = call(tk, "shopify_sync_products", {"idempotency_key": "nightly-2026-11-29"})
    assert again.output["complete"] is True
    assert again.output["bulk_operation_id"] == "gid://shopify/BulkOperation/2"
    # The same key once complete answers with that sync and exports nothing again.
    repeat = call(tk, "shopify_sync_products", {"idempotency_key": "nightly-2026-11-29"})
    assert repeat.output["complete"] is True and repeat.output["synced"] == 7
    assert len(graphql_requests(saas, "bulkOperationRunQuery")) == 2
    # Without a key and nothing unfinished, a new sync starts.
    fresh = call(tk, "shopify_sync_products", {})
    assert fresh.output["effect"]["effect_id"] != again.output["effect"]["effect_id"]
    assert len(graphql_requests(saas, "bulkOperationRunQuery")) == 3


def test_a_sync_left_to_the_workers_resumes_there(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    """A failed attempt is handed to the workers (the tests' Celery runs it at once), which
    continue with the same export (its id kept on the effect's row), no repeats."""
    settings.EFFECT_RETRY_DELAYS = [0.0]
    settings.SHOPIFY_SYNC_BATCH_SIZE = 2
    tk = make_tenant("bulk5")
    connect_shopify(tk.tenant, saas)
    saas.state.shopify.jsonl_cut_after = 7
    result = call(tk, "shopify_sync_products", {})
    effect = result.output["effect"]
    assert (effect["state"], effect["attempts"]) == ("done", 2)
    assert effect["result"]["bulk_operation_id"] == "gid://shopify/BulkOperation/1"
    assert len(graphql_requests(saas, "bulkOperationRunQuery")) == 1
    downloads = [p for m, p, _, _ in saas.state.requests if p.startswith("/shopify-bulk/")]
    assert downloads == ["/shopify-bulk/1.jsonl", "/shopify-bulk/1.jsonl"]
    keys = [s["key"] for s in snapshots(tk.tenant)]
    assert len(keys) == 7 and len(set(keys)) == 7
