"""Every ModelAdmin that holds tenant rows is scoped to the tenants its viewer administers: the
registry is walked, so a new admin cannot forget. And the outbox, as a staff admin of two
tenants saw it: a third tenant's payloads (WhatsApp texts) are neither listed nor shown."""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import models
from django.test import Client, RequestFactory

from smarteros.models import OutboxEvent
from tenants.admin import TenantScopedAdmin
from tenants.models import AuditEvent, Membership, Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-admin-registry-1"
# Registered models that hold no tenant's rows, and why they are not scoped.
NOT_TENANT_DATA = {
    "auth.User": "people sign in across tenants; memberships (tenant rows) say where",
    "auth.Group": "permission groups are platform configuration",
}


def tenant_path(model: type[models.Model], depth: int = 3) -> str | None:
    """The lookup from `model` to its tenant's id: `tenant_id` (a foreign key to Tenant or a
    plain column of that name), a chain of foreign keys ending in one, or `pk` for Tenant."""
    if model is Tenant:
        return "pk"
    queue: deque[tuple[type[models.Model], str, int]] = deque([(model, "", 0)])
    while queue:
        current, prefix, level = queue.popleft()
        for field in current._meta.concrete_fields:
            if field.attname == "tenant_id" or (
                field.is_relation and field.related_model is Tenant
            ):
                return f"{prefix}{field.attname}"
        if level < depth:
            for field in current._meta.concrete_fields:
                if field.is_relation and field.many_to_one and field.related_model:
                    queue.append((field.related_model, f"{prefix}{field.name}__", level + 1))
    return None


def unscoped(site: admin.AdminSite) -> list[str]:
    """Registered admins holding tenant rows that are not scoped to the viewer's tenants."""
    found = []
    for model, model_admin in site._registry.items():
        path = tenant_path(model)
        if path is None:
            continue
        lookup = getattr(model_admin, "tenant_lookup", None)
        if not isinstance(model_admin, TenantScopedAdmin) or lookup not in (path, "tenant"):
            found.append(f"{model._meta.label} ({type(model_admin).__name__}, tenant at {path})")
    return found


def test_the_walk_finds_an_unscoped_admin_holding_tenant_rows() -> None:
    site = admin.AdminSite(name="probe")
    site.register(OutboxEvent, admin.ModelAdmin)
    site.register(AuditEvent, TenantScopedAdmin)
    assert unscoped(site) == ["smarteros.OutboxEvent (ModelAdmin, tenant at tenant_id)"]


def test_every_registered_admin_holding_tenant_rows_is_scoped() -> None:
    assert unscoped(admin.site) == []
    untenanted = {model._meta.label for model in admin.site._registry if tenant_path(model) is None}
    assert untenanted == set(NOT_TENANT_DATA)


def test_every_scoped_admin_filters_its_rows_to_the_viewers_tenants(make_tenant: Any) -> None:
    acme, globex = make_tenant("acme").tenant, make_tenant("globex").tenant
    user = get_user_model().objects.create_user("scope-probe", password=PASSWORD, is_staff=True)
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=acme, role=Membership.Role.ADMIN)
    request = RequestFactory().get("/admin/")
    request.user = user
    for model, model_admin in admin.site._registry.items():
        if tenant_path(model) is None:
            continue
        sql = str(model_admin.get_queryset(request).query)
        assert f"IN ({acme.pk})" in sql and str(globex.pk) not in sql.split("WHERE")[-1], (
            model._meta.label,
            sql,
        )


def staff(username: str, *codenames: str, superuser: bool = False) -> Client:
    user = get_user_model().objects.create_user(
        username, password=PASSWORD, is_staff=True, is_superuser=superuser
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def outbox_row(tenant: Tenant | None, text: str) -> OutboxEvent:
    with dangerously_unscoped():
        return OutboxEvent.objects.create(
            event_id=uuid.uuid4(),
            tenant_id=tenant.pk if tenant else None,
            tenant=tenant.slug if tenant else "",
            topic=f"{tenant.slug}.whatsapp.outbound" if tenant else "mcp.agent.telemetry",
            key="+14155550123",
            event_type="whatsapp.message.sent",
            payload=f'{{"data": {{"text": "{text}"}}}}',
        )


def test_a_staff_admin_of_two_tenants_reads_only_their_outbox_rows(make_tenant: Any) -> None:
    acme, globex, initech = (make_tenant(s).tenant for s in ("acme", "globex", "initech"))
    client = staff("two-tenants", "view_outboxevent", "change_outboxevent")
    with dangerously_unscoped():
        user = get_user_model().objects.get(username="two-tenants")
        for tenant in (acme, globex):
            Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.ADMIN)
    mine = [outbox_row(acme, "acme order shipped"), outbox_row(globex, "globex hello")]
    theirs = outbox_row(initech, "initech private text")
    platform = outbox_row(None, "platform row")

    listing = client.get("/admin/smarteros/outboxevent/").content.decode()
    assert "acme.whatsapp.outbound" in listing and "globex.whatsapp.outbound" in listing
    assert "initech" not in listing and "mcp.agent.telemetry" not in listing
    assert client.get(f"/admin/smarteros/outboxevent/{mine[0].pk}/change/").status_code == 200
    for row in (theirs, platform):
        page = client.get(f"/admin/smarteros/outboxevent/{row.pk}/change/")
        assert page.status_code in (302, 403) and "private text" not in page.content.decode()
    retry = client.post(
        "/admin/smarteros/outboxevent/",
        {"action": "retry", "_selected_action": [str(theirs.pk)], "index": "0"},
    )
    assert retry.status_code == 403
    with dangerously_unscoped():
        assert (
            AuditEvent.objects.filter(
                action__startswith="admin.", action__endswith=".refused", tenant=initech
            ).count()
            == 2
        )

    root = staff("root", superuser=True).get("/admin/smarteros/outboxevent/").content.decode()
    assert "initech.whatsapp.outbound" in root and "mcp.agent.telemetry" in root
