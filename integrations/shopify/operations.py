"""Shopify operations: webhooks in, products, inventory, orders, catalogue sync."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from django.conf import settings
from django.utils import timezone
from pydantic import Field, StringConstraints

from effects.models import Effect
from effects.schemas import EffectOut, IdempotencyKey, idempotency_key_field
from effects.services import (
    effect_enqueue,
    effect_get,
    effect_perform,
    effect_perform_on_commit,
    effect_record,
)
from integrations.connections import connection_require
from integrations.inbound import SHOPIFY, Refused, external_ids_check, signature_check
from integrations.payloads import BadPayload, json_load_untrusted
from integrations.shopify.client import PRODUCT_QUERY, ShopifyClient
from integrations.shopify.effects import shopify_client_for
from integrations.shopify.orders import InventoryBehaviour
from integrations.shopify.schemas import (
    InventoryItemGid,
    LocationGid,
    ProductGid,
    ProductOut,
    ShopDomain,
    VariantGid,
    WebhookId,
    WebhookTopic,
    product_from_graphql,
    shopify_delivery_parse,
)
from integrations.shopify.services import shopify_webhook_accept
from integrations.shopify.sync import (
    PRODUCT_CACHE_SECONDS,
    SYNC_KIND,
    Observer,
    product_cache_key,
    sync_observe,
    sync_unobserve,
)
from mcp_tools.context import OperationContext
from mcp_tools.registry import operation
from mcp_tools.schemas import E164Phone, Email, Input, Output
from smarteros.errors import InvalidInput, NotFound, PermissionDenied
from smarteros.events.outbox import tenant_event_emit
from smarteros.infra.redis import get_redis
from tenants.scope import tenant_scope


def shopify_client(ctx: OperationContext) -> ShopifyClient:
    return shopify_client_for(tenant=ctx.tenant)


def _emit(
    ctx: OperationContext, topic: str, event_type: str, key: str, data: dict[str, Any]
) -> None:
    tenant_event_emit(
        tenant=ctx.tenant,
        topic=topic,
        event_type=event_type,
        data=data,
        key=key,
        source="integrations.shopify",
        trace_id=ctx.trace_id,
    )


def _cache_key(ctx: OperationContext, product_id: str) -> str:
    return product_cache_key(ctx.tenant.slug, product_id)


class WebhookIn(Input):
    topic: WebhookTopic
    webhook_id: WebhookId
    shop_domain: ShopDomain
    hmac_sha256: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The delivery's X-Shopify-Hmac-Sha256 header (base64)."
    )
    raw_body: Annotated[str, StringConstraints(min_length=2)] = Field(
        description="The delivery's body exactly as Shopify sent it: the HMAC covers these bytes "
        "(UTF-8), so it must not be re-serialised."
    )


class WebhookOut(Output):
    accepted: bool = Field(description="True if queued for shopify.webhooks; false if a repeat.")
    duplicate: bool = Field(description="True if this webhook id was accepted before.")
    topic: str = Field(description="Kafka topic the webhook was queued for.")


@operation(
    service="shopify",
    title="Process Shopify webhook",
    permission="shopify.write",
    idempotent=True,
    emits=("shopify.webhook.received",),
)
def process_webhook(ctx: OperationContext, params: WebhookIn) -> WebhookOut:
    """Queue a Shopify webhook delivery received elsewhere (a relay, a replay) for the tenant's
    shopify.webhooks topic, from which flows start. It is checked exactly as at
    /hooks/shopify/<tenant>/: the shop domain must be the connected shop and hmac_sha256 the
    HMAC of raw_body with the shop's app secret. Repeated webhook ids are ignored."""
    connection = connection_require(tenant=ctx.tenant, provider="shopify")
    raw = params.raw_body.encode()
    try:
        delivery = shopify_delivery_parse(
            {
                "X-Shopify-Topic": params.topic,
                "X-Shopify-Webhook-Id": params.webhook_id,
                "X-Shopify-Shop-Domain": params.shop_domain,
            },
            json_load_untrusted(raw, max_depth=settings.WEBHOOK_MAX_JSON_DEPTH),
        )
    except BadPayload as exc:
        raise InvalidInput(str(exc).replace("body", "raw_body", 1)) from None
    try:
        external_ids_check(SHOPIFY, connection, [delivery.shop_domain])
        signature_check(SHOPIFY, connection, raw, params.hmac_sha256)
    except Refused as refused:
        field = "shop_domain" if refused.reason == "foreign_delivery" else "hmac_sha256"
        error = PermissionDenied if refused.reason == "foreign_delivery" else InvalidInput
        raise error(f"{field}: {refused.message}") from None
    accepted = shopify_webhook_accept(
        tenant=ctx.tenant,
        topic=delivery.topic,
        webhook_id=delivery.webhook_id,
        payload=delivery.payload,
        trace_id=ctx.trace_id,
    )
    return WebhookOut(
        accepted=accepted, duplicate=not accepted, topic=f"{ctx.tenant.slug}.shopify.webhooks"
    )


class GetProductIn(Input):
    product_id: ProductGid  # type: ignore[valid-type]
    fresh: bool = Field(False, description="Skip the cache and ask Shopify.")


@operation(
    service="shopify",
    title="Get Shopify product",
    permission="shopify.read",
    read_only=True,
    open_world=True,
    emits=("shopify.product.snapshot",),
)
def get_product(ctx: OperationContext, params: GetProductIn) -> ProductOut:
    """Get a product with its variants, prices and inventory. Served from the cache for five
    minutes; each fetch also updates the tenant's compacted shopify.products topic."""
    client = shopify_client(ctx)
    redis = get_redis()
    if not params.fresh and (cached := redis.get(_cache_key(ctx, params.product_id))):
        return ProductOut.model_validate_json(cached)
    data = client.graphql(PRODUCT_QUERY, {"id": params.product_id})
    if not data.get("product"):
        raise NotFound(f"product_id: no product {params.product_id} in shop {client.shop_domain}")
    product = product_from_graphql(data["product"])
    redis.set(_cache_key(ctx, product.id), product.model_dump_json(), ex=PRODUCT_CACHE_SECONDS)
    _emit(ctx, "shopify.products", "shopify.product.snapshot", product.id, product.model_dump())
    return product


class UpdateInventoryIn(Input):
    inventory_item_id: InventoryItemGid  # type: ignore[valid-type]
    location_id: LocationGid  # type: ignore[valid-type]
    quantity: int = Field(ge=0, le=1_000_000, description="New available quantity (0 to 1000000).")
    reason: Literal[
        "correction", "cycle_count_available", "damaged", "received", "restock", "shrinkage"
    ] = Field("correction", description="Why the quantity changes (Shopify's inventory reasons).")
    expected_quantity: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="The available quantity you read before deciding: the write is made only if "
        "Shopify still holds it (compare-and-swap), otherwise it fails with `conflict`; read "
        "the product again and decide anew. Omit it to set the quantity whatever it is.",
    )
    idempotency_key: IdempotencyKey | None = idempotency_key_field()


class UpdateInventoryOut(Output):
    adjustment_group_id: str = Field(
        default="", description="Shopify's id for this change, once done."
    )
    inventory_item_id: str = Field(description="The inventory item changed.")
    quantity: int = Field(description="The available quantity asked for.")
    effect: EffectOut = Field(description="The write: done, or pending (retried) or failed.")

    def settle(self, effect: Effect) -> None:
        self.effect = EffectOut.of(effect)
        self.adjustment_group_id = str((effect.result or {}).get("adjustment_group_id", ""))


@operation(
    service="shopify",
    title="Set Shopify inventory",
    permission="shopify.write",
    idempotent=True,
    open_world=True,
    emits=("shopify.inventory.set",),
)
def update_inventory(ctx: OperationContext, params: UpdateInventoryIn) -> UpdateInventoryOut:
    """Set the available quantity of an inventory item at one location (once per
    idempotency_key, which Shopify also receives); with expected_quantity, only if the item
    still has that quantity (else `conflict`)."""
    connection_require(tenant=ctx.tenant, provider="shopify")
    effect = effect_record(
        tenant=ctx.tenant,
        kind="shopify.update_inventory",
        key=params.idempotency_key or uuid.uuid4().hex,
        payload={
            "inventory_item_id": params.inventory_item_id,
            "location_id": params.location_id,
            "quantity": params.quantity,
            "reason": params.reason,
            "expected_quantity": params.expected_quantity,
        },
        trace_id=ctx.trace_id,
        inline=True,
    )
    out = UpdateInventoryOut(
        inventory_item_id=params.inventory_item_id,
        quantity=params.quantity,
        effect=EffectOut.of(effect),
    )
    effect_perform_on_commit(effect, then=out.settle)
    return out


class OrderLine(Input):
    variant_id: VariantGid  # type: ignore[valid-type]
    quantity: int = Field(ge=1, le=10_000, description="Units of this variant (1 to 10000).")


class CreateOrderIn(Input):
    line_items: list[OrderLine] = Field(
        min_length=1, max_length=100, description="What is ordered (1-100 lines)."
    )
    email: Email | None = Field(None, description="Customer email for the order.")
    phone: E164Phone | None = Field(None, description="Customer phone in E.164 format.")
    note: Annotated[str, StringConstraints(max_length=5000)] | None = Field(
        None, description="Order note."
    )
    inventory_behaviour: InventoryBehaviour | None = Field(
        None,
        description="How the order claims stock: decrement_obeying_policy (the variant's "
        "inventory policy decides if it may be sold beyond stock), decrement_ignoring_policy, or "
        "bypass (stock untouched). Omitted: the platform's setting, decrement_obeying_policy "
        "unless changed.",
    )
    idempotency_key: IdempotencyKey | None = idempotency_key_field()


class CreateOrderOut(Output):
    order_id: str = Field(default="", description="Order global id, once done.")
    legacy_id: str = Field(
        default="",
        description="Shopify's numeric order id as a decimal string (it can exceed 2^53), "
        "once done.",
    )
    name: str = Field(
        default="", description="Order name as the shop shows it, e.g. #1001, once done."
    )
    total: str = Field(default="", description="Total price as a decimal string, once done.")
    currency: str = Field(default="", description="ISO currency code, once done.")
    effect: EffectOut = Field(description="The order's creation: done, or pending or failed.")

    def settle(self, effect: Effect) -> None:
        self.effect = EffectOut.of(effect)
        result = effect.result or {}
        for name in ("order_id", "legacy_id", "name", "total", "currency"):
            setattr(self, name, str(result.get(name, "")))


@operation(
    service="shopify",
    title="Create Shopify order",
    permission="shopify.write",
    open_world=True,
    emits=("shopify.order.created",),
)
def create_order(ctx: OperationContext, params: CreateOrderIn) -> CreateOrderOut:
    """Create an order in the tenant's Shopify shop from variant ids and quantities, claiming
    stock, once per idempotency_key: the order is tagged with it and a retry finds and returns
    the first order instead of creating another."""
    connection_require(tenant=ctx.tenant, provider="shopify")
    order: dict[str, Any] = {
        "lineItems": [
            {"variantId": li.variant_id, "quantity": li.quantity} for li in params.line_items
        ]
    }
    for field_name, value in (
        ("email", params.email),
        ("phone", params.phone),
        ("note", params.note),
    ):
        if value:
            order[field_name] = value
    effect = effect_record(
        tenant=ctx.tenant,
        kind="shopify.create_order",
        key=params.idempotency_key or uuid.uuid4().hex,
        payload={
            "order": order,
            "inventory_behaviour": params.inventory_behaviour
            or settings.SHOPIFY_ORDER_INVENTORY_BEHAVIOUR,
        },
        trace_id=ctx.trace_id,
        inline=True,
    )
    out = CreateOrderOut(effect=EffectOut.of(effect))
    effect_perform_on_commit(effect, then=out.settle)
    return out


class SyncProductsIn(Input):
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Your key for this sync: calling again with it resumes that sync where it "
        "stopped (or returns it, once complete). Omit it to resume the tenant's unfinished "
        "sync, or start a new one if there is none.",
    )
    restart: bool = Field(
        False, description="Start a new export even if an unfinished sync exists."
    )


class SyncProductsOut(Output):
    synced: int = Field(description="Products written to the shopify.products topic so far.")
    complete: bool = Field(description="True once the whole catalogue is written.")
    bulk_operation_id: str = Field(
        description="Shopify's bulk operation exporting the catalogue (a global id string)."
    )
    effect: EffectOut = Field(
        description="The sync as an outside effect: done, or pending (resumed by the workers, "
        "or by calling again) or failed (call again to resume from its checkpoint)."
    )


def _sync_effect(ctx: OperationContext, params: SyncProductsIn) -> Effect:
    """The sync to run: the caller's, the tenant's unfinished one, or a new one. A failed one
    is pending again: it resumes from its checkpoint."""
    with tenant_scope(ctx.tenant.pk):
        key = params.idempotency_key
        if key is None and not params.restart:
            key = (
                Effect.objects.filter(
                    kind=SYNC_KIND, state__in=[Effect.State.PENDING, Effect.State.FAILED]
                )
                .order_by("-created_at")
                .values_list("key", flat=True)
                .first()
            )
        effect = effect_record(
            tenant=ctx.tenant,
            kind=SYNC_KIND,
            key=key or f"sync-{uuid.uuid4().hex}",
            payload={},
            trace_id=ctx.trace_id,
            inline=True,
        )
        if effect.state == Effect.State.FAILED:
            Effect.objects.filter(pk=effect.pk, state=Effect.State.FAILED).update(
                state=Effect.State.PENDING, attempts=0, not_before=timezone.now()
            )
    return effect


@operation(
    service="shopify",
    title="Sync Shopify products",
    permission="shopify.write",
    idempotent=True,
    open_world=True,
    reports_progress=True,
    emits=("shopify.product.snapshot",),
    atomic=False,  # minutes of export: each batch of products commits with its checkpoint
)
def sync_products(ctx: OperationContext, params: SyncProductsIn) -> SyncProductsOut:
    """Copy the whole catalogue into the tenant's compacted shopify.products topic through one
    Shopify bulk operation, reporting progress as the products are written. Resumable: an
    interrupted or failed sync continues from its checkpoint when called again (or by the
    workers); cancelling stops it between batches."""
    connection_require(tenant=ctx.tenant, provider="shopify")
    effect = _sync_effect(ctx, params)
    token = sync_observe(Observer(ctx.report_progress, ctx.raise_if_cancelled))
    try:
        outcome = effect_perform(effect_id=effect.pk, tenant_id=ctx.tenant.pk)
    finally:
        sync_unobserve(token)
    if outcome.retry_in is not None:
        effect_enqueue(effect, countdown=outcome.retry_in)
    ctx.raise_if_cancelled()
    effect = effect_get(tenant_id=ctx.tenant.pk, effect_id=effect.pk)
    progress = effect.result or {}
    return SyncProductsOut(
        synced=int(progress.get("synced") or 0),
        complete=effect.state == Effect.State.DONE,
        bulk_operation_id=str(progress.get("bulk_operation_id") or ""),
        effect=EffectOut.of(effect),
    )
