"""The per-tenant limit holds across surfaces, exactly, and tenants do not share it."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from mcp_tools.executor import execute
from tenants.ratelimit import rate_limit_hit

pytestmark = pytest.mark.django_db


def test_the_limit_holds_within_one_percent_and_other_tenants_are_unaffected(
    make_tenant: Any,
) -> None:
    from mcp_tools.auth import principal_from_api_key

    limit = 500
    busy = make_tenant(f"busy{secrets.token_hex(3)}", rate_limit=limit)
    quiet = make_tenant(f"quiet{secrets.token_hex(3)}", rate_limit=limit)
    busy_principal = principal_from_api_key(busy.key)
    quiet_principal = principal_from_api_key(quiet.key)
    surfaces = ["rest", "mcp-stdio", "mcp-http"]
    outcomes = [
        execute("tenant_get_tenant", {}, principal=busy_principal, surface=surfaces[i % 3]).ok
        for i in range(int(limit * 1.5))
    ]
    admitted = sum(outcomes)
    assert abs(admitted - limit) <= limit * 0.01
    assert all(outcomes[:limit]) and not any(outcomes[limit + 5 :])
    refused = execute("tenant_get_tenant", {}, principal=busy_principal, surface="rest")
    assert refused.error is not None and refused.error.code == "rate_limited"
    assert 1 <= refused.error.retry_after <= 60  # type: ignore[attr-defined]
    assert all(
        execute("tenant_get_tenant", {}, principal=quiet_principal, surface="rest").ok
        for _ in range(50)
    )


def test_redis_down_fails_open_by_default_and_closed_when_configured(settings: Any) -> None:
    from smarteros.infra.redis import get_redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    try:
        assert rate_limit_hit(tenant_slug="acme").allowed is True
        settings.RATE_LIMIT_FAIL_OPEN = False
        assert rate_limit_hit(tenant_slug="acme").allowed is False
    finally:
        get_redis.cache_clear()
