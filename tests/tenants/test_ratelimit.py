"""The per-tenant limit holds across surfaces, exactly, and tenants do not share it."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from mcp_tools.executor import execute
from tenants import ratelimit
from tenants.ratelimit import rate_limit_forget_leases, rate_limit_hit

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
    # A permit counts until its lease's end (at most LEASE_SECONDS after it was given) + 60 s.
    assert 1 <= refused.error.retry_after <= 61  # type: ignore[attr-defined]
    assert all(
        execute("tenant_get_tenant", {}, principal=quiet_principal, surface="rest").ok
        for _ in range(50)
    )


def test_redis_down_fails_open_by_default_and_closed_when_configured(settings: Any) -> None:
    from smarteros.infra.redis import get_redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    rate_limit_forget_leases()  # permits leased earlier would answer without asking Redis
    try:
        assert rate_limit_hit(tenant_slug="acme").allowed is True
        settings.RATE_LIMIT_FAIL_OPEN = False
        assert rate_limit_hit(tenant_slug="acme").allowed is False
    finally:
        get_redis.cache_clear()


def test_replicas_leasing_permits_never_admit_more_than_the_limit_together() -> None:
    """Two processes' worth of leases on one tenant: their admissions add up to the limit
    exactly, and permits one leased but did not spend go back for the other."""
    slug = f"lease{secrets.token_hex(3)}"
    limit = 1000  # leases of up to 10 permits
    first, second = ratelimit._Leases(), ratelimit._Leases()
    admitted = [first.hit(slug, limit).allowed for _ in range(7)]  # leases of 1, 2 and 4 permits
    assert all(admitted)
    assert first._by_tenant[slug].granted - first._by_tenant[slug].spent == 0
    admitted += [second.hit(slug, limit).allowed for _ in range(5)]
    held = second._by_tenant[slug]
    assert held.granted - held.spent == 2  # leased 1, 2, 4; spent 5
    # Both hammer the tenant: together they get what is left of the limit, and no more.
    admitted += [
        replica.hit(slug, limit).allowed for _ in range(700) for replica in (first, second)
    ]
    assert sum(admitted) == limit
    refused = first.hit(slug, limit)
    assert not refused.allowed and 1 <= refused.retry_after <= 61


def test_unspent_permits_go_back_when_the_lease_ends(monkeypatch: Any) -> None:
    slug = f"lease{secrets.token_hex(3)}"
    limit = 100  # leases of one permit: 1% of the limit
    busy, idle = ratelimit._Leases(), ratelimit._Leases()
    monkeypatch.setattr(ratelimit, "LEASE_SHARE", 0.1)  # leases of up to 10 permits
    assert all(idle.hit(slug, limit).allowed for _ in range(15))  # leases of 1, 2, 4, 8
    assert idle._by_tenant[slug].granted - idle._by_tenant[slug].spent == 0
    assert sum(busy.hit(slug, limit).allowed for _ in range(200)) == limit - 15
    # idle's last lease (8 permits, all spent) ended long ago for the purpose of this test:
    lease = idle._by_tenant[slug]
    lease.spent = 3  # pretend it spent only 3 of its 8 permits
    lease.ends_at = 0.0
    # Renewing gives the 5 unspent permits back, and the limit has room for exactly those.
    assert idle.hit(slug, limit).allowed
    assert sum(idle.hit(slug, limit).allowed for _ in range(20)) == 4
