"""row_by_pk reads what the ORM reads, converters included, and row-level security still holds."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db.models import Model

from mcp_tools.models import AgentSession
from smarteros.db import row_by_pk, row_where
from tenants.models import ApiKey, Tenant
from tenants.scope import dangerously_unscoped, tenant_read_scope, tenant_scope

pytestmark = pytest.mark.django_db


def field_values(instance: Model) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_reads_the_same_instance_as_the_orm(make_tenant: Any) -> None:
    acme = make_tenant("acme").tenant
    with tenant_scope(acme.pk):
        session = AgentSession.objects.create(
            tenant=acme, label="support", metadata={"channel": "whatsapp", "n": [1, 2]}
        )
        key = ApiKey.objects.get(tenant=acme)
        for model, pk in ((Tenant, acme.pk), (ApiKey, key.pk), (AgentSession, session.pk)):
            fast = row_by_pk(model, pk)
            assert field_values(fast) == field_values(model.objects.get(pk=pk))
            assert fast._state.adding is False and fast._state.db == "default"
        fast_session = row_by_pk(AgentSession, session.pk)
        assert isinstance(fast_session.id, uuid.UUID)
        assert fast_session.metadata == {"channel": "whatsapp", "n": [1, 2]}  # JSON decoded


def test_row_level_security_still_decides_what_exists(make_tenant: Any) -> None:
    acme, globex = make_tenant("acme").tenant, make_tenant("globex").tenant
    with dangerously_unscoped():
        acme_key, globex_key = acme.api_keys.get(), globex.api_keys.get()
    with tenant_read_scope(acme.pk):
        assert row_by_pk(ApiKey, acme_key.pk).tenant_id == acme.pk
        with pytest.raises(ApiKey.DoesNotExist):
            row_by_pk(ApiKey, globex_key.pk)
    with pytest.raises(ApiKey.DoesNotExist):
        row_by_pk(ApiKey, acme_key.pk)  # no tenant in scope: no rows
    with dangerously_unscoped(), pytest.raises(Tenant.DoesNotExist, match="pk=-1"):
        row_by_pk(Tenant, -1)


def test_row_where_reads_by_unique_fields(make_tenant: Any) -> None:
    acme, globex = make_tenant("acme").tenant, make_tenant("globex").tenant
    with dangerously_unscoped(atomic=False):
        found = row_where(Tenant, slug="acme")
        assert found is not None and field_values(found) == field_values(acme)
        assert found._state.db == "platform"
        assert row_where(Tenant, slug="no-such-tenant") is None
    with tenant_read_scope(acme.pk):
        key = row_where(ApiKey, tenant_id=acme.pk)
        assert key is not None and key.tenant_id == acme.pk
        assert row_where(ApiKey, tenant_id=globex.pk) is None  # RLS
        with pytest.raises(ValueError, match="revoked_at"):
            row_where(ApiKey, tenant_id=acme.pk, revoked_at=None)
