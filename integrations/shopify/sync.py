"""The catalogue sync: one Shopify bulk operation exports every product with its variants, its
JSONL result is streamed line by line into the tenant's compacted shopify.products topic.

It runs as an outside effect (`shopify.sync_products`), so it is recorded, visible in the
console with the tenant's other effects, retried by the workers if it fails on the way, and
resumable: the effect's row keeps a checkpoint (the bulk operation's id, the result lines
done, the products written), updated in the same transaction as each batch's events, so a
restart neither loses nor repeats a batch. No transaction stays open while Shopify works or the
file downloads."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel

from effects.models import Effect
from effects.registry import EffectCall, effect
from integrations.http import stream_lines
from integrations.shopify.client import ShopifyClient, raise_user_errors
from integrations.shopify.effects import shopify_client_for
from integrations.shopify.schemas import ProductOut, product_from_graphql
from mcp_tools.errors import UpstreamError
from smarteros.events.outbox import tenant_event_emit
from smarteros.infra.redis import get_redis
from tenants.scope import tenant_read_scope, tenant_scope

log = logging.getLogger(__name__)

SYNC_KIND = "shopify.sync_products"
PRODUCT_CACHE_SECONDS = 300

# Bulk queries take no pagination arguments: Shopify exports each connection whole, nested
# connections as their own lines carrying __parentId.
BULK_PRODUCTS_QUERY = """
{
  products {
    edges {
      node {
        id title handle status totalInventory updatedAt
        variants {
          edges { node { id title sku price inventoryQuantity inventoryItem { id } } }
        }
      }
    }
  }
}
"""

BULK_RUN_MUTATION = """
mutation BulkProducts($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

BULK_OPERATION_QUERY = """
query BulkOperation($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount rootObjectCount url partialDataUrl }
  }
}
"""

RUNNING = {"CREATED", "RUNNING", "CANCELING"}
# The operation is gone for good: the next attempt starts a new one.
GONE = {"CANCELED", "EXPIRED", "FAILED"}


def product_cache_key(tenant_slug: str, product_id: str) -> str:
    return f"smarteros:shopify:product:{tenant_slug}:{product_id}"


@dataclass
class Checkpoint:
    """Where a sync stands; kept in its effect's row while it is pending."""

    bulk_operation_id: str = ""
    lines_done: int = 0
    synced: int = 0
    status: str = "starting"
    orphans: int = 0

    @classmethod
    def of(cls, result: Any) -> Checkpoint:
        known = {k: v for k, v in (result or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Observer:
    """The caller watching a sync run in its thread: progress to report, a cancel to honour."""

    progress: Callable[[float, float | None, str | None], None]
    raise_if_cancelled: Callable[[], None]


_observer: contextvars.ContextVar[Observer | None] = contextvars.ContextVar(
    "shopify_sync_observer", default=None
)


def sync_observe(observer: Observer) -> contextvars.Token[Observer | None]:
    """Have the syncs performed in this context report to `observer`."""
    return _observer.set(observer)


def sync_unobserve(token: contextvars.Token[Observer | None]) -> None:
    _observer.reset(token)


class SyncPayload(BaseModel):
    pass  # what to export is fixed; the effect's key tells syncs apart


def _checkpoint_save(call: EffectCall, checkpoint: Checkpoint) -> None:
    """Store the checkpoint on the pending effect and extend its lease: a sync outlives the
    lease of one provider call, and another worker must not take it over while it progresses.
    Runs inside the caller's transaction where there is one (a batch's events)."""
    Effect.objects.filter(pk=call.effect_id, state=Effect.State.PENDING).update(
        result=asdict(checkpoint),
        not_before=timezone.now() + timedelta(seconds=settings.EFFECT_LEASE_SECONDS),
        updated_at=timezone.now(),
    )


def _checkpoint_load(call: EffectCall) -> Checkpoint:
    with tenant_read_scope(call.tenant.pk):
        result = Effect.objects.filter(pk=call.effect_id).values_list("result", flat=True).first()
    return Checkpoint.of(result)


def _bulk_start(client: ShopifyClient) -> str:
    data = client.graphql(BULK_RUN_MUTATION, {"query": BULK_PRODUCTS_QUERY})
    payload = data.get("bulkOperationRunQuery") or {}
    raise_user_errors(payload, "bulkOperationRunQuery")
    operation_id = str((payload.get("bulkOperation") or {}).get("id") or "")
    if not operation_id:
        raise UpstreamError("Shopify bulkOperationRunQuery answered without an operation id")
    return operation_id


def _bulk_wait(
    call: EffectCall, client: ShopifyClient, checkpoint: Checkpoint, observer: Observer | None
) -> dict[str, Any]:
    """Poll the bulk operation until it stops running, holding the effect's lease meanwhile.
    The caller hears once that Shopify is exporting (MCP progress values must increase, so
    polls are not each reported)."""
    operation_id = checkpoint.bulk_operation_id
    announced = False
    while True:
        if observer:
            observer.raise_if_cancelled()
        node = client.graphql(BULK_OPERATION_QUERY, {"id": operation_id}).get("node") or {}
        status = str(node.get("status") or "")
        if not status:
            raise UpstreamError(f"Shopify has no bulk operation {operation_id}")
        if status not in RUNNING:
            return node
        if observer and not announced:
            observer.progress(0, None, f"Shopify is exporting the catalogue ({status})")
            announced = True
        with tenant_scope(call.tenant.pk):
            _checkpoint_save(call, checkpoint)  # still working on it: keep the lease
        time.sleep(settings.SHOPIFY_BULK_POLL_SECONDS)


@effect(SYNC_KIND, payload=SyncPayload)
def sync_products(call: EffectCall) -> dict[str, Any]:
    """Export the catalogue through a bulk operation and write it to shopify.products, from the
    checkpoint on."""
    observer = _observer.get()
    client = shopify_client_for(tenant=call.tenant)
    checkpoint = _checkpoint_load(call)
    if not checkpoint.bulk_operation_id:
        checkpoint.bulk_operation_id = _bulk_start(client)
        checkpoint.status = "exporting"
        with tenant_scope(call.tenant.pk):
            _checkpoint_save(call, checkpoint)
    operation = _bulk_wait(call, client, checkpoint, observer)
    status = operation["status"]
    if status != "COMPLETED":
        if status in GONE:
            gone = Checkpoint(synced=checkpoint.synced, status=f"bulk operation {status}")
            with tenant_scope(call.tenant.pk):
                _checkpoint_save(call, gone)  # a retry starts a new export
        raise UpstreamError(
            f"Shopify bulk operation {checkpoint.bulk_operation_id} ended {status}"
            + (f" ({operation['errorCode']})" if operation.get("errorCode") else "")
        )
    total = int(operation.get("rootObjectCount") or 0)
    if operation.get("url"):
        lines = stream_lines("Shopify", str(operation["url"]))
        _write_products(call, client, lines, checkpoint, total, observer)
    if observer:
        observer.progress(checkpoint.synced, total or checkpoint.synced, _message(checkpoint))
    return {
        "bulk_operation_id": checkpoint.bulk_operation_id,
        "synced": checkpoint.synced,
        "objects": int(operation.get("objectCount") or 0),
        "orphans": checkpoint.orphans,
        "query_cost": client.spent,
        "status": "complete",
    }


def _message(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.synced} products written to shopify.products"


@dataclass
class _Batch:
    """Products read but not yet written; and the recently written ones, so a variant listed
    after its product's batch was written updates that product (Shopify lists children after
    their parent, not necessarily right after)."""

    open: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    written: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    rewrite: set[str] = field(default_factory=set)

    def add_child(self, parent_id: str, child: dict[str, Any]) -> bool:
        parent = self.open.get(parent_id) or self.written.get(parent_id)
        if parent is None:
            return False
        parent.setdefault("variants", {"nodes": []})["nodes"].append(child)
        if parent_id in self.written:
            self.rewrite.add(parent_id)
        return True


def _write_products(
    call: EffectCall,
    client: ShopifyClient,
    lines: Iterator[str],
    checkpoint: Checkpoint,
    total: int,
    observer: Observer | None,
) -> None:
    batch = _Batch()
    size = settings.SHOPIFY_SYNC_BATCH_SIZE
    index = -1
    for index, line in enumerate(lines):
        if index < checkpoint.lines_done or not line.strip():
            continue
        record = json.loads(line)
        parent_id = record.pop("__parentId", None)
        if parent_id is not None:
            if not batch.add_child(str(parent_id), record):
                checkpoint.orphans += 1
            continue
        if len(batch.open) >= size:
            _flush(call, batch, checkpoint, lines_done=index)
            if observer:
                observer.raise_if_cancelled()
                observer.progress(checkpoint.synced, total or None, _message(checkpoint))
        record["variants"] = {"nodes": []}
        batch.open[str(record["id"])] = record
    _flush(call, batch, checkpoint, lines_done=max(index + 1, checkpoint.lines_done))


def _flush(call: EffectCall, batch: _Batch, checkpoint: Checkpoint, *, lines_done: int) -> None:
    """Write the open products (and those a late variant changed) with the checkpoint, in one
    transaction; then cache them."""
    rewrites = [batch.written[i] for i in batch.rewrite if i in batch.written]
    products = [product_from_graphql(node) for node in [*batch.open.values(), *rewrites]]
    checkpoint.synced += len(batch.open)
    checkpoint.lines_done = lines_done
    checkpoint.status = "writing"
    with tenant_scope(call.tenant.pk):
        for product in products:
            tenant_event_emit(
                tenant=call.tenant,
                topic="shopify.products",
                event_type="shopify.product.snapshot",
                data=product.model_dump(),
                key=product.id,
                source="integrations.shopify",
                trace_id=call.trace_id,
            )
        _checkpoint_save(call, checkpoint)
    _cache(call, products)
    batch.written.update(batch.open)
    while len(batch.written) > 2 * settings.SHOPIFY_SYNC_BATCH_SIZE:
        batch.written.popitem(last=False)
    batch.open.clear()
    batch.rewrite.clear()


def _cache(call: EffectCall, products: list[ProductOut]) -> None:
    if not products:
        return
    with get_redis().pipeline(transaction=False) as pipe:
        for product in products:
            pipe.set(
                product_cache_key(call.tenant.slug, product.id),
                product.model_dump_json(),
                ex=PRODUCT_CACHE_SECONDS,
            )
        pipe.execute()
