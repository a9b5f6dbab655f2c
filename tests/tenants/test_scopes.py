"""Scopes as an attacker holding a tenant key sees them: `*` stops short of admin and platform
operations, scopes are validated against the registry, and limits are the platform's to set."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from mcp_tools.auth import principal_from_api_key
from mcp_tools.executor import execute, visible_operations
from mcp_tools.registry import get_registry
from tenants.models import AuditEvent, Tenant
from tenants.scope import dangerously_unscoped
from tenants.scopes import scopes_validate
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_star_covers_ordinary_permissions_only(make_tenant: Any) -> None:
    principal = principal_from_api_key(make_tenant("acme", scopes=["*"]).key)
    names = {op.name for op in visible_operations(principal)}
    assert "tenant_get_tenant" in names and "shopify_get_product" in names
    for op in get_registry().all():
        if op.permission in ("agent.admin", "tenant.admin", "platform.admin") or op.platform:
            assert op.name not in names, op.name
            result = execute(op.name, {}, principal=principal, surface="rest")
            assert result.error is not None and result.error.code == "permission_denied"
            assert ("platform.admin" if op.platform else op.permission) in result.error.message
    typo = execute("tenant_get_tenat", {}, principal=principal, surface="rest")
    assert typo.error is not None and typo.error.code == "unknown_operation"
    assert "did you mean tenant_get_tenant" in typo.error.message
    registered = execute(
        "agent_register_mcp_server",
        {"name": "x", "transport": "http", "url": "https://example.com/mcp"},
        principal=principal,
        surface="rest",
    )
    assert not registered.ok


def test_admin_scopes_are_granted_by_name(make_tenant: Any) -> None:
    principal = principal_from_api_key(make_tenant("acme", scopes=["tenant.admin"]).key)
    names = {op.name for op in visible_operations(principal)}
    assert {"tenant_update_tenant", "tenant_provision_resources"} <= names
    assert "tenant_get_tenant" not in names and "tenant_create_tenant" not in names


def test_scopes_are_validated_against_the_registry(make_tenant: Any) -> None:
    tenant = make_tenant("acme").tenant
    with pytest.raises(ValidationError, match=r"unknown scope.*tenant.everything"):
        api_key_create(tenant=tenant, name="k", scopes=["tenant.read", "tenant.everything"])
    with pytest.raises(ValidationError, match=r"only platform admins.*platform.admin"):
        api_key_create(tenant=tenant, name="k", scopes=["platform.admin"])
    with pytest.raises(ValidationError, match=r"only platform admins.*tenant_create_tenant"):
        scopes_validate(["tenant_create_tenant"], platform_allowed=False)
    with pytest.raises(ValidationError, match="at least one scope"):
        scopes_validate([" "], platform_allowed=False)
    assert scopes_validate(["*", "agent.admin", "*"], platform_allowed=False) == [
        "*",
        "agent.admin",
    ]
    with dangerously_unscoped():
        assert tenant.api_keys.count() == 1  # the fixture's key only


def test_a_tenant_key_cannot_raise_its_own_plan_or_rate_limit(make_tenant: Any) -> None:
    acme = make_tenant("acme")  # tenant.admin included
    principal = principal_from_api_key(acme.key)
    for field, value in (("plan", "enterprise"), ("rate_limit_per_minute", 1_000_000)):
        result = execute(
            "tenant_update_tenant",
            {"name": "Renamed", field: value},
            principal=principal,
            surface="rest",
        )
        assert result.error is not None and result.error.code == "permission_denied"
        assert result.error.http_status == 403
        assert field in result.error.message and "platform" in result.error.message
    with dangerously_unscoped():
        tenant = Tenant.objects.get(pk=acme.tenant.pk)
        refusals = list(
            AuditEvent.objects.filter(tenant=tenant, action="tenant_update_tenant.refused")
        )
    assert (tenant.name, tenant.plan, tenant.rate_limit_per_minute) == ("Acme", "free", None)
    assert len(refusals) == 2 and "plan" in refusals[1].details["reason"]
    assert execute(
        "tenant_update_tenant", {"name": "Renamed"}, principal=principal, surface="rest"
    ).ok


def test_a_platform_key_may_change_plan_and_rate_limit(make_tenant: Any) -> None:
    platform = make_tenant("platform", scopes=["platform.admin"])
    result = execute(
        "tenant_update_tenant",
        {"plan": "enterprise", "rate_limit_per_minute": 5000},
        principal=principal_from_api_key(platform.key),
        surface="rest",
    )
    assert result.ok, result.error
    with dangerously_unscoped():
        tenant = Tenant.objects.get(pk=platform.tenant.pk)
    assert (tenant.plan, tenant.rate_limit_per_minute) == ("enterprise", 5000)
