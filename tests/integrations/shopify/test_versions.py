"""Admin API versions: one supported list, the client speaking each version's shape of
inventorySetQuantities, and an unknown version refused wherever a connection is saved."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.models import IntegrationConnection
from integrations.shopify.versions import DEFAULT_API_VERSION, SUPPORTED_API_VERSIONS
from tenants.scope import dangerously_unscoped
from tests.integrations.shopify.helpers import (
    INVENTORY_ARGS,
    call,
    connect_shopify,
    graphql_requests,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_list_holds_the_current_stable_and_the_next_quarterly_versions() -> None:
    assert DEFAULT_API_VERSION == "2026-10"  # the stable release on 2026-11-29
    assert {"2026-07", "2026-10", "2027-01"} <= set(SUPPORTED_API_VERSIONS)
    assert list(SUPPORTED_API_VERSIONS) == sorted(SUPPORTED_API_VERSIONS)


@pytest.mark.parametrize("version", SUPPORTED_API_VERSIONS)
def test_update_inventory_speaks_the_connections_version(
    version: str, make_tenant: Any, saas: Any
) -> None:
    tk = make_tenant(f"inv{version.replace('-', '')}")
    connect_shopify(tk.tenant, saas, api_version=version)
    result = call(tk, "shopify_update_inventory", {**INVENTORY_ARGS, "idempotency_key": "k1"})
    assert result.ok, result.error
    assert result.output["effect"]["state"] == "done"
    assert result.output["adjustment_group_id"] == "gid://shopify/InventoryAdjustmentGroup/1"
    [(path, body)] = graphql_requests(saas, "inventorySetQuantities")
    assert path == f"/admin/api/{version}/graphql.json"
    assert "@idempotent(key: $idempotencyKey)" in body["query"]
    assert body["variables"]["idempotencyKey"]
    quantity = body["variables"]["input"]["quantities"][0]
    if version >= "2026-04":
        # changeFromQuantity on each quantity, null: set without compare-and-set.
        assert "changeFromQuantity" in quantity and quantity["changeFromQuantity"] is None
        assert "ignoreCompareQuantity" not in body["variables"]["input"]
    else:
        assert body["variables"]["input"]["ignoreCompareQuantity"] is True
        assert "changeFromQuantity" not in quantity


def test_without_a_version_the_current_stable_is_used(make_tenant: Any, saas: Any) -> None:
    tk = make_tenant("invdefault")
    connect_shopify(tk.tenant, saas)
    product = {"product_id": "gid://shopify/Product/1000", "fresh": True}
    assert call(tk, "shopify_get_product", product).ok
    [(path, _)] = graphql_requests(saas, "query Product(")
    assert path == f"/admin/api/{DEFAULT_API_VERSION}/graphql.json"


def test_an_unknown_version_is_refused_when_saved_and_nothing_changes(
    make_tenant: Any, saas: Any
) -> None:
    tk = make_tenant("badversion")
    connect_shopify(tk.tenant, saas, api_version="2026-04")
    for bad in ("2025-10", "2026-02", "unstable", "latest"):
        with pytest.raises(ValueError, match=r"^api_version: .*2026-01, 2026-04"):
            connect_shopify(tk.tenant, saas, api_version=bad)
    with dangerously_unscoped():
        assert IntegrationConnection.objects.get(tenant=tk.tenant).config["api_version"] == (
            "2026-04"
        )


def test_the_admin_form_refuses_an_unknown_version_naming_the_setting(make_tenant: Any) -> None:
    from integrations.admin import IntegrationConnectionForm

    tk = make_tenant("adminversion")
    form = IntegrationConnectionForm(
        data={
            "tenant": tk.tenant.pk,
            "provider": "shopify",
            "config": '{"shop_domain": "adminversion.myshopify.com", "api_version": "2025-07"}',
            "credentials": '{"access_token": "shpat_x"}',
        }
    )
    with dangerously_unscoped():
        assert not form.is_valid()
    assert "api_version: '2025-07' is not a supported" in form.errors["config"][0]


def test_a_version_stored_before_it_left_the_list_is_refused_naming_it(
    make_tenant: Any, saas: Any
) -> None:
    tk = make_tenant("oldversion")
    connect_shopify(tk.tenant, saas)
    with dangerously_unscoped():
        IntegrationConnection.objects.filter(tenant=tk.tenant).update(
            config={"shop_domain": "oldversion.myshopify.com", "api_version": "2025-10"}
        )
    result = call(tk, "shopify_get_product", {"product_id": "gid://shopify/Product/1000"})
    assert result.error is not None and result.error.code == "integration_not_connected"
    assert "api_version: '2025-10' is not a supported" in result.error.message
    assert graphql_requests(saas) == []  # nothing was sent to Shopify


def test_the_stand_in_refuses_the_pre_2026_04_shape_at_2026_04(saas: Any) -> None:
    """The old client's request fails against the 2026-04 schema: the stand-in can fail us."""
    from integrations.shopify.client import INVENTORY_SET_MUTATION, ShopifyClient
    from smarteros.errors import UpstreamError
    from tests.fixtures.saas import SHOPIFY_TOKEN

    client = ShopifyClient(
        "s.myshopify.com", SHOPIFY_TOKEN, api_version="2026-04", base_url=saas.url
    )
    item = {
        "inventoryItemId": "gid://shopify/InventoryItem/9000",
        "locationId": "gid://shopify/Location/1",
        "quantity": 5,
    }
    old_input: dict[str, Any] = {
        "name": "available",
        "reason": "correction",
        "ignoreCompareQuantity": True,
        "quantities": [item],
    }
    with pytest.raises(UpstreamError, match="ignoreCompareQuantity"):
        client.graphql(INVENTORY_SET_MUTATION, {"input": old_input, "idempotencyKey": "k"})
    without_key = INVENTORY_SET_MUTATION.replace(" @idempotent(key: $idempotencyKey)", "").replace(
        ", $idempotencyKey: String!", ""
    )
    new_input = {
        **old_input,
        "quantities": [{**item, "changeFromQuantity": None}],
    }
    del new_input["ignoreCompareQuantity"]
    with pytest.raises(UpstreamError, match="@idempotent directive is required"):
        client.graphql(without_key, {"input": new_input})
    # The same request is accepted at 2026-01, where ignoreCompareQuantity still exists.
    older = ShopifyClient(
        "s.myshopify.com", SHOPIFY_TOKEN, api_version="2026-01", base_url=saas.url
    )
    data = older.graphql(INVENTORY_SET_MUTATION, {"input": old_input, "idempotencyKey": "k2"})
    assert data["inventorySetQuantities"]["userErrors"] == []
