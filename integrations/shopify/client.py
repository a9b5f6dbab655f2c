"""Shopify Admin GraphQL API client: cost-aware (it reads extensions.cost and waits out
THROTTLED answers and HTTP 429 within a bound), and each payload's userErrors mapped to errors
that name the field."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from integrations.http import request_response, response_json
from integrations.shopify.versions import DEFAULT_API_VERSION, uses_change_from_quantity
from smarteros.errors import (
    Conflict,
    InvalidInput,
    OperationError,
    RateLimited,
    UpstreamError,
)

log = logging.getLogger(__name__)


class ShopifyThrottled(UpstreamError, RateLimited):
    """Shopify's rate limit held after the bounded waits. An UpstreamError, so an effect is
    retried later; a RateLimited, so REST answers 429 with Retry-After."""

    code = "upstream_rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        OperationError.__init__(self, message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class QueryCost:
    """One answer's extensions.cost: what the query cost and what is left in the shop's bucket."""

    requested: float
    actual: float | None
    maximum: float
    available: float
    restore_rate: float

    @classmethod
    def of(cls, body: Any) -> QueryCost | None:
        cost = (
            ((body or {}).get("extensions") or {}).get("cost") if isinstance(body, dict) else None
        )
        if not isinstance(cost, dict):
            return None
        throttle = cost.get("throttleStatus") or {}
        return cls(
            requested=float(cost.get("requestedQueryCost") or 0),
            actual=None if cost.get("actualQueryCost") is None else float(cost["actualQueryCost"]),
            maximum=float(throttle.get("maximumAvailable") or 0),
            available=float(throttle.get("currentlyAvailable") or 0),
            restore_rate=float(throttle.get("restoreRate") or 0),
        )

    def seconds_until_affordable(self) -> float:
        """How long the bucket takes to hold the requested cost again."""
        missing = max(self.requested - self.available, 1.0)
        return missing / self.restore_rate if self.restore_rate > 0 else 1.0

    def as_dict(self) -> dict[str, float | None]:
        return {
            "requested": self.requested,
            "actual": self.actual,
            "available": self.available,
            "maximum": self.maximum,
            "restore_rate": self.restore_rate,
        }


def _throttled(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict)
        and (
            (e.get("extensions") or {}).get("code") == "THROTTLED"
            or e.get("message") == "Throttled"
        )
        for e in errors
    )


def _retry_after(value: str | None) -> float:
    try:
        return max(float(value or ""), 0.0)
    except ValueError:
        return 1.0  # Shopify sends seconds; anything else, wait a second


@dataclass
class ShopifyClient:
    shop_domain: str
    access_token: str
    api_version: str = DEFAULT_API_VERSION
    base_url: str = ""  # defaults to https://{shop_domain}; tests point it at a loopback server
    # The last answer's cost, and the total spent by this client (one call, one effect batch).
    last_cost: QueryCost | None = field(default=None, compare=False)
    spent: float = field(default=0.0, compare=False)

    @property
    def endpoint(self) -> str:
        base = self.base_url.rstrip("/") or f"https://{self.shop_domain}"
        return f"{base}/admin/api/{self.api_version}/graphql.json"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one document and return its data. A THROTTLED answer or an HTTP 429 is waited
        out (the bucket's restore rate, or Retry-After) up to SHOPIFY_THROTTLE_RETRIES times;
        then ShopifyThrottled says when to retry. Other GraphQL errors are UpstreamError."""
        attempts = settings.SHOPIFY_THROTTLE_RETRIES + 1
        for attempt in range(1, attempts + 1):
            response = request_response(
                "Shopify",
                "POST",
                self.endpoint,
                json={"query": query, "variables": variables or {}},
                headers={"X-Shopify-Access-Token": self.access_token},
                url_setting="api_base_url" if self.base_url else "shop_domain",
            )
            if response.status_code == 429:
                wait = _retry_after(response.headers.get("Retry-After"))
                reason = "answered HTTP 429"
            else:
                body = response_json("Shopify", self.endpoint, response)
                cost = self._account(body)
                if not _throttled(body):
                    return self._data(body)
                wait = cost.seconds_until_affordable() if cost else 1.0
                reason = "throttled the query (THROTTLED)" + (
                    f": it costs {cost.requested:g} points, {cost.available:g} of "
                    f"{cost.maximum:g} available, {cost.restore_rate:g} restored per second"
                    if cost
                    else ""
                )
            if attempt == attempts or wait > settings.SHOPIFY_THROTTLE_MAX_WAIT_SECONDS:
                retry_after = max(1, math.ceil(wait))
                raise ShopifyThrottled(
                    f"Shopify rate limit: shop {self.shop_domain} {reason}; "
                    f"retry after {retry_after}s",
                    retry_after=retry_after,
                )
            log.info("shopify %s; waiting %.2fs (attempt %d)", reason, wait, attempt)
            time.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _account(self, body: Any) -> QueryCost | None:
        cost = QueryCost.of(body)
        if cost is not None:
            self.last_cost = cost
            self.spent += cost.actual if cost.actual is not None else 0.0
            log.info(
                "shopify cost %s: requested %g, actual %s, available %g/%g, restore %g/s",
                self.shop_domain,
                cost.requested,
                cost.actual,
                cost.available,
                cost.maximum,
                cost.restore_rate,
            )
        return cost

    @staticmethod
    def _data(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise UpstreamError("Shopify answered with a body that is not a JSON object")
        if body.get("errors"):
            errors = body["errors"] if isinstance(body["errors"], list) else [body["errors"]]
            messages = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )[:500]
            raise UpstreamError(f"Shopify GraphQL error: {messages}")
        return body.get("data") or {}


# userErrors codes that are not the caller's input: the same request may pass later, or the
# data changed under it.
_RETRYABLE_USER_ERRORS = {"IDEMPOTENCY_CONCURRENT_REQUEST"}
_CONFLICT_USER_ERRORS = {
    "CHANGE_FROM_QUANTITY_STALE",
    "COMPARE_QUANTITY_STALE",
    "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
    "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
}


def raise_user_errors(payload: dict[str, Any], mutation: str, *, argument: str = "") -> None:
    """Raise the payload's userErrors as one error naming each field, as `quantities.0.quantity:
    message` (the mutation's `argument` name left out of the path): InvalidInput for the
    caller's input, Conflict for stale data or a reused key, UpstreamError if it may pass."""
    errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    if not errors:
        return
    details: list[dict[str, object]] = []
    for error in errors:
        path = [str(part) for part in error.get("field") or []]
        if path and argument and path[0] == argument:
            path = path[1:]
        details.append(
            {"field": ".".join(path), "code": error.get("code"), "message": error.get("message")}
        )
    text = "; ".join(
        f"{d['field']}: {d['message']}" if d["field"] else str(d["message"]) for d in details
    )
    codes = {d["code"] for d in details}
    if codes & _RETRYABLE_USER_ERRORS:
        raise UpstreamError(f"Shopify {mutation}: {text}", details=details)
    if codes & _CONFLICT_USER_ERRORS:
        raise Conflict(f"Shopify {mutation}: {text}", details=details)
    raise InvalidInput(text, details=details)


PRODUCT_FIELDS = """
  id title handle status totalInventory updatedAt
  variants(first: 100) { nodes { id title sku price inventoryQuantity inventoryItem { id } } }
"""

PRODUCT_QUERY = f"query Product($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"

SHOP_QUERY = "query ShopInfo { shop { name myshopifyDomain } }"

# Shopify's @idempotent directive: a retry with the same key is answered with the first
# attempt's result instead of being applied again (required for this mutation from 2026-04).
# Orders cannot carry it (see orders.py).
INVENTORY_SET_MUTATION = """
mutation InventorySet($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""


def inventory_set_input(
    api_version: str,
    *,
    inventory_item_id: str,
    location_id: str,
    quantity: int,
    reason: str,
    change_from_quantity: int | None = None,
) -> dict[str, Any]:
    """The InventorySetQuantitiesInput for `api_version`: from 2026-04 each quantity carries
    changeFromQuantity (null: no compare-and-set), before it ignoreCompareQuantity or
    compareQuantity did the same."""
    item: dict[str, Any] = {
        "inventoryItemId": inventory_item_id,
        "locationId": location_id,
        "quantity": quantity,
    }
    body: dict[str, Any] = {"name": "available", "reason": reason, "quantities": [item]}
    if uses_change_from_quantity(api_version):
        item["changeFromQuantity"] = change_from_quantity
    elif change_from_quantity is None:
        body["ignoreCompareQuantity"] = True
    else:
        item["compareQuantity"] = change_from_quantity
    return body
