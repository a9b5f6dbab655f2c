"""What a provider's error answers become for the caller."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_tools.context import Principal
from mcp_tools.executor import execute

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_n8n_execution_that_does_not_exist_is_not_found_not_an_upstream_failure(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    from tenants.models import ApiKey
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    connect(acme.tenant, "n8n", saas.url)
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=acme.tenant)
    principal = Principal(tenant=acme.tenant, api_key=key)

    missing = execute(
        "n8n_get_execution", {"execution_id": "404"}, principal=principal, surface="rest"
    )
    assert missing.error is not None
    assert (missing.error.code, missing.error.http_status) == ("not_found", 404)
    assert "n8n has no /api/v1/executions/404" in missing.error.message

    found = execute(
        "n8n_get_execution", {"execution_id": "42"}, principal=principal, surface="rest"
    )
    assert found.ok, found.error
