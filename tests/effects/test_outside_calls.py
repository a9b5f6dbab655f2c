"""Operations whose work is outside (paging Shopify, provisioning) hold no transaction across it:
what each step recorded is committed as it goes and survives a later failure."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from smarteros.models import OutboxEvent
from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


def product_events(tenant: Tenant) -> int:
    with dangerously_unscoped():
        return OutboxEvent.objects.filter(
            tenant_id=tenant.pk, topic=f"{tenant.slug}.shopify.products"
        ).count()


def test_sync_products_writes_nothing_from_half_an_export_then_commits_it_all(
    make_tenant: Any, connect: Any, saas: Any, settings: Any
) -> None:
    """The export is ungrouped (a product's variant may be its last line), so no product is
    written while the file still arrives; then every product is, in batches."""
    settings.SHOPIFY_SYNC_BATCH_SIZE = 3
    settings.SHOPIFY_BULK_POLL_SECONDS = 0.05
    tk = make_tenant("syncshop")
    connect(tk.tenant, "shopify", saas.url)
    saas.state.shopify.jsonl_line_delay = 0.3  # a large export file arriving slowly
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(call(tk, "shopify_sync_products", {}))
        finally:
            connection.close()  # this thread's own

    sync = threading.Thread(target=run)
    sync.start()
    wait_for(
        lambda: any(p.startswith("/shopify-bulk/") for _, p, _, _ in saas.state.requests),
        timeout=10,
        interval=0.05,
    )
    time.sleep(1.0)  # a few lines in
    assert sync.is_alive() and product_events(tk.tenant) == 0
    sync.join(30)
    assert results[0].ok and results[0].output["synced"] == 7
    assert results[0].output["complete"] is True
    assert product_events(tk.tenant) == 7


def test_a_provisioning_failure_through_an_operation_keeps_its_error_record(
    broker: Any,
    make_tenant: Any,
    settings: Any,
) -> None:
    tk = make_tenant("provshop")
    settings.VAULT_ADDR = "http://127.0.0.1:1"  # Vault is down
    failed = call(tk, "tenant_provision_resources", {})
    assert failed.error is not None and "vault_key" in failed.error.message
    with dangerously_unscoped():
        tenant = Tenant.objects.get(pk=tk.tenant.pk)
        announced = OutboxEvent.objects.filter(
            tenant_id=tenant.pk, topic="tenant.provisioning"
        ).count()
    assert tenant.provisioning_error.startswith("vault_key:")  # not rolled back with the call
    assert announced == 2  # kafka_topics done, vault_key failed
    settings.VAULT_ADDR = "http://127.0.0.1:8200"
    done = call(tk, "tenant_provision_resources", {})
    assert done.ok, done.error
    with dangerously_unscoped():
        assert Tenant.objects.get(pk=tk.tenant.pk).provisioning_error == ""
