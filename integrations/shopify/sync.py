"""The catalogue sync: one Shopify bulk operation exports every product with its variants, its
JSONL result is streamed line by line into the tenant's compacted shopify.products topic.

The output is ungrouped (`groupObjects: false`, Shopify's default from 2026-01): a variant can
come anywhere in the file, so the file is first loaded into a local store keyed by parent, then
the products are written with their variants, memory bounded at any catalogue size.

It runs as an outside effect (`shopify.sync_products`), so it is recorded, visible in the
console with the tenant's other effects, retried by the workers if it fails on the way, and
resumable: the effect's row keeps a checkpoint (the bulk operation's id, the products written
in file order), updated in the same transaction as each batch's events, so a restart neither
loses nor repeats a batch. No transaction stays open while Shopify works or the file
downloads."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
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
from smarteros.errors import UpstreamError
from smarteros.events.outbox import outbox_emit_many, tenant_event
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

# Ungrouped said explicitly: the sync does not need grouping, which Shopify documents as slower.
BULK_RUN_MUTATION = """
mutation BulkProducts($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
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
# Result lines held in memory before they go to the local store.
_STORE_CHUNK = 2000


def product_cache_key(tenant_slug: str, product_id: str) -> str:
    return f"smarteros:shopify:product:{tenant_slug}:{product_id}"


@dataclass
class Checkpoint:
    """Where a sync stands; kept in its effect's row while it is pending."""

    bulk_operation_id: str = ""
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
        _write_products(call, lines, checkpoint, total, observer)
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


class _ExportStore:
    """The export's lines on local disk (SQLite), keyed by parent: from API 2026-01 a bulk
    operation's output is ungrouped, so a variant can be anywhere in the file, before or far
    after its product. Memory stays bounded by SQLite's page cache whatever the catalogue size;
    the file is deleted when the sync's attempt ends."""

    def __init__(self, directory: str) -> None:
        self.db = sqlite3.connect(os.path.join(directory, "export.sqlite3"))
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE products (id TEXT PRIMARY KEY, body TEXT NOT NULL);
            CREATE TABLE children (parent TEXT NOT NULL, body TEXT NOT NULL);
            """
        )

    def load(self, lines: Iterator[str], pulse: Callable[[], None]) -> None:
        """Read the whole result file into the store (objects without __parentId are
        products, the others their variants); `pulse()` is called every few thousand lines."""
        products: list[tuple[str, str]] = []
        children: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            parent_id = record.pop("__parentId", None)
            if parent_id is None:
                products.append((str(record["id"]), json.dumps(record)))
            else:
                children.append((str(parent_id), json.dumps(record)))
            if number % _STORE_CHUNK == 0:
                self._insert(products, children)
                pulse()
        self._insert(products, children)
        self.db.execute("CREATE INDEX children_parent ON children (parent)")

    def _insert(self, products: list[tuple[str, str]], children: list[tuple[str, str]]) -> None:
        # A product listed twice (a retried export page) is kept once.
        self.db.executemany("INSERT OR IGNORE INTO products VALUES (?, ?)", products)
        self.db.executemany("INSERT INTO children VALUES (?, ?)", children)
        self.db.commit()
        products.clear()
        children.clear()

    def product_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM products").fetchone()[0])

    def orphans(self) -> int:
        """Children whose parent is not in the file."""
        query = "SELECT count(*) FROM children WHERE parent NOT IN (SELECT id FROM products)"
        return int(self.db.execute(query).fetchone()[0])

    def batches(self, *, skip: int, size: int) -> Iterator[list[dict[str, Any]]]:
        """The products in file order from the `skip`-th on, `size` at a time, each with its
        variants (in file order) under `variants.nodes`."""
        last = self.db.execute(
            "SELECT coalesce(max(rowid), 0) FROM (SELECT rowid FROM products ORDER BY rowid "
            "LIMIT ?)",
            (skip,),
        ).fetchone()[0]
        while True:
            rows = self.db.execute(
                "SELECT rowid, id, body FROM products WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, size),
            ).fetchall()
            if not rows:
                return
            nodes: dict[str, dict[str, Any]] = {}
            for _, product_id, body in rows:
                nodes[product_id] = {**json.loads(body), "variants": {"nodes": []}}
            children = self.db.execute(
                "SELECT c.parent, c.body FROM children c JOIN products p ON p.id = c.parent "
                "WHERE p.rowid > ? AND p.rowid <= ? ORDER BY c.rowid",
                (last, rows[-1][0]),
            )
            for parent_id, body in children:
                nodes[parent_id]["variants"]["nodes"].append(json.loads(body))
            last = rows[-1][0]
            yield list(nodes.values())

    def close(self) -> None:
        self.db.close()


def _write_products(
    call: EffectCall,
    lines: Iterator[str],
    checkpoint: Checkpoint,
    total: int,
    observer: Observer | None,
) -> None:
    """Load the result file into a local store, then write the products with their variants
    from the checkpoint on. A lost download loads the file again on the next attempt; products
    already written (checkpoint.synced, in file order) are not written again."""
    checkpoint.status = "loading"
    lease_kept = time.monotonic()

    def pulse() -> None:
        nonlocal lease_kept
        if observer:
            observer.raise_if_cancelled()
        # A large file takes a while: hold the effect's lease meanwhile, a few times a lease.
        if time.monotonic() - lease_kept > settings.EFFECT_LEASE_SECONDS / 4:
            with tenant_scope(call.tenant.pk):
                _checkpoint_save(call, checkpoint)
            lease_kept = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="smarteros-shopify-sync-") as directory:
        store = _ExportStore(directory)
        try:
            store.load(lines, pulse)
            checkpoint.orphans = store.orphans()
            total = total or store.product_count()
            for nodes in store.batches(
                skip=checkpoint.synced, size=settings.SHOPIFY_SYNC_BATCH_SIZE
            ):
                if observer:
                    observer.raise_if_cancelled()
                _flush(call, nodes, checkpoint)
                # The last batch is reported by the caller, once (progress must increase).
                if observer and checkpoint.synced < total:
                    observer.progress(checkpoint.synced, total, _message(checkpoint))
        finally:
            store.close()


def _flush(call: EffectCall, nodes: list[dict[str, Any]], checkpoint: Checkpoint) -> None:
    """Write one batch of products with the checkpoint, in one transaction; then cache them."""
    products = [product_from_graphql(node) for node in nodes]
    checkpoint.synced += len(products)
    checkpoint.status = "writing"
    with tenant_scope(call.tenant.pk):
        outbox_emit_many(
            [
                tenant_event(
                    tenant=call.tenant,
                    topic="shopify.products",
                    event_type="shopify.product.snapshot",
                    data=product.model_dump(),
                    key=product.id,
                    source="integrations.shopify",
                    trace_id=call.trace_id,
                )
                for product in products
            ],
            tenant_id=call.tenant.pk,
        )
        _checkpoint_save(call, checkpoint)
    _cache(call, products)


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
