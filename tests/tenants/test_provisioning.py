"""Provisioning against the real Kafka-API broker and OpenBao, including a failure half-way."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.conf import settings

from smarteros.events.catalog import tenant_topics
from smarteros.events.topics import topic_configs
from smarteros.infra.kafka import admin_client
from smarteros.models import OutboxEvent
from tenants.models import ApiKey, Tenant
from tenants.provisioning import ProvisioningFailed, tenant_provision
from tenants.scope import dangerously_unscoped
from tenants.secrets import tenant_namespace, tenant_vault, transit_key_name

pytestmark = pytest.mark.django_db


def new_tenant() -> Tenant:
    # A fresh slug each run: the broker and Vault outlive the test database.
    with dangerously_unscoped():
        return Tenant.objects.create(slug=f"prov{secrets.token_hex(4)}", name="Provisioned")


def broker_topics(prefix: str) -> set[str]:
    return {t for t in admin_client().list_topics(timeout=10).topics if t.startswith(prefix)}


def vault_key_exists(slug: str) -> bool:
    try:
        tenant_vault(slug).secrets.transit.read_key(
            name=transit_key_name(slug), mount_point=settings.VAULT_TRANSIT_MOUNT
        )
        return True
    except Exception:
        return False


def test_provisioning_creates_topics_key_and_first_api_key_once() -> None:
    tenant = new_tenant()
    report = tenant_provision(tenant=tenant)
    expected = {spec.name for spec in tenant_topics(tenant.slug)}
    assert broker_topics(f"{tenant.slug}.") == expected
    # Dead-letter topics wait for a first dead letter (smarteros.events.failures).
    assert f"{tenant.slug}.shopify.products" in expected
    assert not any(name.endswith(".dlq") for name in broker_topics(f"{tenant.slug}."))
    configs = topic_configs([f"{tenant.slug}.shopify.products", f"{tenant.slug}.whatsapp.inbound"])
    assert configs[f"{tenant.slug}.shopify.products"]["cleanup.policy"] == "compact"
    assert configs[f"{tenant.slug}.whatsapp.inbound"]["cleanup.policy"] == "delete"
    assert vault_key_exists(tenant.slug)
    assert (
        tenant_namespace(tenant.slug) == f"smarteros-{tenant.slug}"
    )  # OpenBao supports namespaces
    assert report.first_api_key and report.first_api_key.startswith("sos_live_")
    with dangerously_unscoped():
        tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE and tenant.provisioning_error == ""

    again = tenant_provision(tenant=tenant)
    assert again.first_api_key is None
    assert dict(again.steps) == {
        "kafka_topics": f"{len(expected)} topics, 0 created",
        "vault_key": "exists",
        "first_api_key": "exists",
    }
    with dangerously_unscoped():
        assert ApiKey.objects.filter(tenant=tenant).count() == 1
        steps = OutboxEvent.objects.filter(tenant_id=tenant.pk, topic="tenant.provisioning")
        assert steps.count() == 6


def test_a_failure_half_way_is_named_and_a_second_run_finishes(settings: Any) -> None:
    tenant = new_tenant()
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    with pytest.raises(ProvisioningFailed) as failure:
        tenant_provision(tenant=tenant)
    assert failure.value.report.failed_step == "vault_key"
    assert dict(failure.value.report.steps)["kafka_topics"].endswith("created")
    with dangerously_unscoped():
        tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.PROVISIONING
    assert (
        tenant.provisioning_error.startswith("vault_key: ")
        and "Vault is unavailable" in tenant.provisioning_error
    )
    assert broker_topics(f"{tenant.slug}.")  # the step before the failure stays done
    with dangerously_unscoped():
        assert not ApiKey.objects.filter(tenant=tenant).exists()

    settings.VAULT_ADDR = "http://127.0.0.1:8200"
    report = tenant_provision(tenant=tenant)
    assert [step for step, _ in report.steps] == ["kafka_topics", "vault_key", "first_api_key"]
    assert dict(report.steps)["kafka_topics"].endswith(", 0 created")
    with dangerously_unscoped():
        tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE and tenant.provisioning_error == ""
    assert vault_key_exists(tenant.slug) and report.first_api_key


@pytest.mark.parametrize(
    ("slug", "rule"),
    [
        ("a", "string_too_short"),
        ("Acme", "string_pattern_mismatch"),
        ("acme_shop", "string_pattern_mismatch"),
        ("acme.", "string_pattern_mismatch"),
        ("x" * 41, "string_too_long"),
        ("-acme", "string_pattern_mismatch"),
    ],
)
def test_bad_slugs_are_validation_errors(make_tenant: Any, slug: str, rule: str) -> None:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    admin = make_tenant("platform", scopes=["platform.admin"])
    result = execute(
        "tenant_create_tenant",
        {"slug": slug, "name": "X"},
        principal=principal_from_api_key(admin.key),
        surface="rest",
    )
    assert result.error is not None and result.error.http_status == 422
    assert "slug: " in result.error.message and rule in result.error.message


def test_slug_collision_is_a_conflict(make_tenant: Any) -> None:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    admin = make_tenant("platform", scopes=["platform.admin"])
    result = execute(
        "tenant_create_tenant",
        {"slug": "platform", "name": "Again"},
        principal=principal_from_api_key(admin.key),
        surface="rest",
    )
    assert result.error is not None and result.error.http_status == 409


def test_deletion_after_the_grace_period_removes_topics_and_key_audited(settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tenants.lifecycle import Action, Actor, tenant_lifecycle_apply
    from tenants.models import AuditEvent
    from tenants.provisioning import tenants_deprovision_due

    tenant = new_tenant()
    report = tenant_provision(tenant=tenant)
    tenant_lifecycle_apply(
        tenant=tenant, action=Action.REQUEST_DELETION, actor=Actor.TENANT_ADMIN, actor_name="user:t"
    )
    assert tenants_deprovision_due() == []  # still within the grace period
    assert broker_topics(f"{tenant.slug}.") and vault_key_exists(tenant.slug)
    with dangerously_unscoped():
        Tenant.objects.filter(pk=tenant.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    assert tenants_deprovision_due() == [tenant.slug]
    assert broker_topics(f"{tenant.slug}.") == set() and not vault_key_exists(tenant.slug)
    from mcp_tools.auth import principal_from_api_key
    from smarteros.errors import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        principal_from_api_key(report.first_api_key)
    with dangerously_unscoped():
        actions = set(AuditEvent.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"tenant.delete_requested", "tenant.deprovisioned"} <= actions
    assert tenants_deprovision_due() == []  # done once


def test_the_vault_namespace_is_recorded_at_provisioning_and_used_afterwards(
    settings: Any,
) -> None:
    from smarteros.errors import DependencyUnavailable
    from tenants import secrets as tenant_secrets

    tenant = new_tenant()
    tenant_provision(tenant=tenant)
    with dangerously_unscoped():
        tenant.refresh_from_db()
    assert tenant.vault_namespace == f"smarteros-{tenant.slug}"

    # Recorded as "none": used as recorded, without asking the server (which is now gone).
    with dangerously_unscoped():
        plain = Tenant.objects.create(
            slug=f"plain{secrets.token_hex(4)}", name="P", vault_namespace=""
        )
    settings.VAULT_ADDR = "http://127.0.0.1:9"
    tenant_secrets._recorded.clear()
    assert tenant_namespace(plain.slug) is None
    # Not recorded yet: the mode is decided now, and an unreachable server is an error.
    unrecorded = new_tenant()
    with pytest.raises(DependencyUnavailable, match="Vault is unavailable"):
        tenant_namespace(unrecorded.slug)
    with dangerously_unscoped():
        assert Tenant.objects.get(pk=unrecorded.pk).vault_namespace is None


def test_a_permission_error_on_namespaces_is_an_error_not_no_namespaces(settings: Any) -> None:
    from smarteros.errors import DependencyUnavailable
    from smarteros.infra.vault import vault_client
    from tenants import secrets as tenant_secrets

    # A real token that may do next to nothing (the "default" policy).
    weak = vault_client().auth.token.create(policies=["default"], ttl="5m", no_parent=True)
    settings.VAULT_TOKEN = weak["auth"]["client_token"]
    tenant_secrets._recorded.clear()
    tenant = new_tenant()
    with pytest.raises(DependencyUnavailable, match="permission denied"):
        tenant_namespace(tenant.slug)
    with dangerously_unscoped():
        assert Tenant.objects.get(pk=tenant.pk).vault_namespace is None
