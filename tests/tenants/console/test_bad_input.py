"""Bad input to the console is a 400 (or a form error) that names the field, never a 500:
page numbers that `str.isdigit()` accepts and `int()` refuses, 5,000 digits, NUL in search
fields, a rate limit past what the column holds, and a provider answering a probe with a list."""

from __future__ import annotations

from typing import Any

import pytest

from tenants.models import Tenant
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db

BAD_NUMBERS = ["²", "9" * 5000, "\uff11\uff12", "1_000", "-1", "0", "abc"]


@pytest.mark.parametrize("path", ["/tenants/", "/tenants/audit/"])
def test_bad_page_numbers_are_400_naming_the_page(world: World, path: str) -> None:
    client = world.client("admin")
    for raw in BAD_NUMBERS:
        response = client.get(path, {"page": raw})
        assert response.status_code == 400, (path, raw[:10], response.status_code)
        assert "page must be a whole number from 1 to 1000000" in response.content.decode()
    assert client.get(path, {"page": "1"}).status_code == 200


def test_nul_in_search_fields_is_400_naming_the_field(world: World) -> None:
    client = world.client("platform")
    listing = client.get("/tenants/", {"q": "acme\x00"})
    assert listing.status_code == 400
    assert "q must not contain NUL characters" in listing.content.decode()
    for field in ("actor", "action", "subject", "tenant", "since", "until"):
        audit = client.get("/tenants/audit/", {field: "x\x00y"})
        assert audit.status_code == 400, field
        assert f"{field} must not contain NUL characters" in audit.content.decode()
    # Times outside what every store holds are refused like any malformed time.
    assert client.get("/tenants/audit/", {"since": "0001-01-01T00:00"}).status_code == 400
    assert client.get("/tenants/audit/", {"since": "2026-01-31T00:00"}).status_code == 200


def test_a_rate_limit_past_the_column_is_a_form_error(world: World) -> None:
    client = world.client("platform")
    slug = world.acme.slug
    before = world.acme.rate_limit_per_minute
    for raw in ("99999999999", str(2**63), "9" * 5000, "²"):
        response = client.post(
            f"/tenants/{slug}/plan/",
            {"plan-plan": "pro", "plan-rate_limit_per_minute": raw, "plan-reason": "upsell"},
        )
        assert response.status_code == 400, (raw[:12], response.status_code)
    with dangerously_unscoped():
        tenant = Tenant.objects.get(pk=world.acme.pk)
    assert (tenant.plan, tenant.rate_limit_per_minute) == ("free", before)
    created = client.post(
        "/tenants/new/",
        {
            "slug": "overflow-co",
            "name": "Overflow",
            "plan": "free",
            "rate_limit_per_minute": "2147483648",
        },
    )
    assert created.status_code == 400
    assert "less than or equal to 1000000" in created.content.decode()
    with dangerously_unscoped():
        assert not Tenant.objects.filter(slug="overflow-co").exists()


def test_a_probe_answered_with_a_list_is_a_clear_failure(
    world: World, connect: Any, saas: Any
) -> None:
    """A tenant's URL may lead to any server: a JSON list where the provider's API answers an
    object is the provider's failure, shown as such."""
    connect(world.acme, "whatsapp", saas.url)
    saas.state.whatsapp.phone_number = lambda headers, phone_number_id: (200, [1, 2, 3])
    response = world.client("admin").post(f"/tenants/{world.acme.slug}/integrations/whatsapp/test/")
    assert response.status_code == 200
    assert 'id="probe-whatsapp" class="error">Connection failed: ' in response.content.decode()
