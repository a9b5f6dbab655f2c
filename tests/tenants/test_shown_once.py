"""A secret shown once (a new API key in the admin or the console, a tenant's first key, an n8n
trigger's header secret) is on that one page only: in no cookie, not in the message storage or
the session, not on the next page, and the page says `Cache-Control: no-store`."""

from __future__ import annotations

import re
import secrets as random_names
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.test import Client

from tenants.models import ApiKey, Membership, Tenant
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-shown-once-1"
API_KEY = re.compile(r"sos_live_[A-Za-z0-9_\-]{8,}")


def staff(username: str, *codenames: str, superuser: bool = False) -> Client:
    user = get_user_model().objects.create_user(
        username, password=PASSWORD, is_staff=True, is_superuser=superuser
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def assert_shown_once(client: Client, response: HttpResponse, secret: str, then: str) -> None:
    assert response.status_code == 200 and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    for cookie in response.cookies.values():
        assert secret not in cookie.value and secret not in cookie.OutputString()
    assert all(secret not in morsel.value for morsel in client.cookies.values())
    session = SessionStore(session_key=client.cookies["sessionid"].value).load()
    assert secret not in repr(session)
    assert secret not in client.get(then).content.decode()


@pytest.fixture
def globex_admin(make_tenant: Any) -> tuple[Client, Tenant]:
    globex = make_tenant("globex").tenant
    client = staff("globex-admin", "view_apikey", "add_apikey", "view_n8ntrigger", "add_n8ntrigger")
    with dangerously_unscoped():
        Membership.objects.create(
            user=get_user_model().objects.get(username="globex-admin"),
            tenant=globex,
            role=Membership.Role.ADMIN,
        )
    return client, globex


def test_a_new_key_in_the_admin_is_shown_once_and_stored_nowhere(
    globex_admin: tuple[Client, Tenant],
) -> None:
    client, globex = globex_admin
    response = client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": str(globex.pk), "name": "once", "scopes_choice": ["shopify.read"]},
    )
    [secret] = API_KEY.findall(response.content.decode())
    with dangerously_unscoped():
        assert secret.startswith(ApiKey.objects.get(name="once").prefix)
    assert_shown_once(client, response, secret, then="/admin/tenants/apikey/")


def test_an_n8n_trigger_secret_in_the_admin_is_shown_once(
    globex_admin: tuple[Client, Tenant],
) -> None:
    client, globex = globex_admin
    response = client.post(
        "/admin/integrations/n8ntrigger/add/",
        {
            "tenant": str(globex.pk),
            "topic": "shopify.webhooks",
            "event_type": "",
            "webhook_path": "orders-in",
        },
    )
    body = response.content.decode()
    [secret] = re.findall(r"<code>([A-Za-z0-9_\-]{40,})</code>", body)
    assert_shown_once(client, response, secret, then="/admin/integrations/n8ntrigger/")


def test_a_first_key_from_the_provision_action_is_shown_once() -> None:
    root = staff("root", superuser=True)
    with dangerously_unscoped():
        fresh = Tenant.objects.create(slug=f"fresh{random_names.token_hex(3)}", name="Fresh")
    response = root.post(
        "/admin/tenants/tenant/",
        {"action": "provision", "_selected_action": [str(fresh.pk)], "index": "0"},
    )
    assert "First API key (shown once)" in response.content.decode()
    [secret] = set(API_KEY.findall(response.content.decode()))
    assert_shown_once(root, response, secret, then="/admin/tenants/tenant/")


def test_a_new_key_in_the_console_is_shown_once(globex_admin: tuple[Client, Tenant]) -> None:
    client, globex = globex_admin
    response = client.post(
        f"/tenants/{globex.slug}/keys/", {"name": "console-once", "scopes": ["shopify.read"]}
    )
    [secret] = set(API_KEY.findall(response.content.decode()))
    assert_shown_once(client, response, secret, then=f"/tenants/{globex.slug}/keys/")
