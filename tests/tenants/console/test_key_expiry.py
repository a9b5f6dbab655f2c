"""API keys expire: the console's new-key form sets an expiry (90 days unless chosen), the list
shows it, and an expired key is refused like a revoked one, on every surface and from the cache."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from mcp_tools.auth import cached_principal, principal_from_api_key
from smarteros.errors import AuthenticationFailed
from tenants.models import ApiKey
from tenants.scope import dangerously_unscoped
from tenants.services import api_key_create
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_console_sets_and_shows_the_expiry(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/keys/"
    admin = world.client("admin")
    assert (
        admin.post(url, {"name": "weekly", "scopes": ["tenant.read"], "expires": "7"}).status_code
        == 200
    )
    assert admin.post(url, {"name": "default", "scopes": ["tenant.read"]}).status_code == 200
    assert (
        admin.post(url, {"name": "forever", "scopes": ["tenant.read"], "expires": "0"}).status_code
        == 200
    )
    assert (
        admin.post(url, {"name": "odd", "scopes": ["tenant.read"], "expires": "3"}).status_code
        == 400
    )
    with dangerously_unscoped():
        keys = {k.name: k.expires_at for k in ApiKey.objects.filter(tenant=world.acme)}
    now = timezone.now()
    weekly, default = keys["weekly"], keys["default"]
    assert weekly is not None and timedelta(days=6) < weekly - now <= timedelta(days=7)
    assert default is not None and timedelta(days=89) < default - now <= timedelta(days=90)
    assert keys["forever"] is None and "odd" not in keys
    page = admin.get(url).content.decode()
    assert f"<td>{weekly:%Y-%m-%d}</td>" in page and "<th>Expires</th>" in page


def test_an_expired_key_is_refused_everywhere(world: World, web_server: str) -> None:
    with dangerously_unscoped():
        issued = api_key_create(
            tenant=world.acme,
            name="soon",
            scopes=["tenant.read"],
            expires_at=timezone.now() + timedelta(hours=1),
        )
    answer = httpx.post(
        f"{web_server}/api/v1/tenant/get_tenant",
        json={},
        headers={"Authorization": f"Bearer {issued.secret}"},
    )
    assert answer.status_code == 200, answer.text
    assert principal_from_api_key(issued.secret) is not None
    remembered = cached_principal(issued.secret)
    assert remembered is not None
    # An hour passes (its expiry moved back instead): the remembered key is not used again,
    # and the database refuses it.
    past = timezone.now() - timedelta(seconds=1)
    remembered.api_key.expires_at = past
    with dangerously_unscoped():
        ApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=past)
    assert cached_principal(issued.secret) is None
    with pytest.raises(AuthenticationFailed):
        principal_from_api_key(issued.secret)
    # The server process remembers an accepted key for API_KEY_CACHE_SECONDS at most.
    deadline = time.monotonic() + settings.API_KEY_CACHE_SECONDS + 2
    while True:
        refused = httpx.post(
            f"{web_server}/api/v1/tenant/get_tenant",
            json={},
            headers={"Authorization": f"Bearer {issued.secret}"},
        )
        if refused.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert refused.status_code == 401
    page = world.client("admin").get(f"/tenants/{world.acme.slug}/keys/").content.decode()
    assert "expired " in page
