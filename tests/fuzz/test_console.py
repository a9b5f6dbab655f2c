"""Every form of the console, found by crawling it as a tenant admin (connected to every
provider, so each integration's forms show), submitted with hostile values as that admin and
as a viewer of the same tenant: never a 5xx; a viewer's posts change nothing."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.models import AuditEvent, Membership, Tenant
from tenants.scope import dangerously_unscoped
from tests.fuzz.console_forms import Form, crawl, form_data
from tests.fuzz.strategies import FUZZ

pytestmark = pytest.mark.django_db

EXAMPLES = 150


class Console:
    def __init__(self, tenant: Tenant, users: dict[str, Any], forms: list[Form]) -> None:
        self.tenant, self.users, self.forms = tenant, users, forms

    def client(self, who: str) -> Client:
        client = Client()
        client.force_login(self.users[who])
        return client


@pytest.fixture
def console(make_tenant: Any, connect: Any, saas: Any) -> Console:
    tenant = make_tenant(f"cfz{secrets.token_hex(3)}", rate_limit=1_000_000).tenant
    for provider in ("shopify", "whatsapp", "n8n", "clerk"):
        connect(tenant, provider, saas.url)
    model = get_user_model()
    users = {
        role: model.objects.create_user(f"{tenant.slug}-{role}", password=secrets.token_hex(8))
        for role in ("admin", "viewer")
    }
    with dangerously_unscoped():
        for role, user in users.items():
            Membership.objects.create(user=user, tenant=tenant, role=role)
    admin = Client()
    admin.force_login(users["admin"])
    forms = crawl(admin, ["/tenants/", f"/tenants/{tenant.slug}/", "/topics/", "/telemetry/"])
    return Console(tenant, users, forms)


def submit(client: Client, form: Form, values: dict[str, Any]) -> Any:
    if form.method == "post":
        return client.post(form.action, values)
    return client.get(form.action, values)


def test_the_crawl_finds_the_console_forms(console: Console) -> None:
    actions = {(f.method, f.action) for f in console.forms}
    slug = console.tenant.slug
    for expected in (
        ("get", "/"),
        ("get", "/tenants/audit/"),
        ("post", f"/tenants/{slug}/keys/"),
        ("post", f"/tenants/{slug}/lifecycle/"),
        ("post", f"/tenants/{slug}/integrations/"),
        ("post", f"/tenants/{slug}/integrations/n8n/test/"),
    ):
        assert expected in actions, (expected, sorted(actions))


@settings(FUZZ, max_examples=EXAMPLES)
@given(data=st.data())
def test_admin_submits_every_form_with_hostile_values(console: Console, data: Any) -> None:
    form = data.draw(st.sampled_from(console.forms), label="form")
    values = form_data(data, form)
    response = submit(console.client("admin"), form, values)
    assert response.status_code < 500, (form.action, values, response.content[:500])


def changes() -> tuple[int, ...]:
    """What a refused viewer may leave behind: nothing but audit rows of its refusals."""
    from integrations.models import IntegrationConnection
    from tenants.models import ApiKey

    with dangerously_unscoped():
        return (
            ApiKey.objects.filter(revoked_at__isnull=True).count(),
            ApiKey.objects.count(),
            IntegrationConnection.objects.count(),
            Membership.objects.count(),
            Tenant.objects.exclude(status=Tenant.Status.ACTIVE).count(),
            AuditEvent.objects.exclude(action__endswith=".refused").count(),
        )


@settings(FUZZ, max_examples=EXAMPLES)
@given(data=st.data())
def test_viewer_submits_every_form_and_changes_nothing(console: Console, data: Any) -> None:
    form = data.draw(st.sampled_from(console.forms), label="form")
    values = form_data(data, form)
    before = changes()
    response = submit(console.client("viewer"), form, values)
    assert response.status_code < 500, (form.action, values, response.content[:500])
    if form.method == "post":
        assert changes() == before, (form.action, values)
