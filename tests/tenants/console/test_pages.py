"""Every console page as each role: what each sees, what each may change, and isolation (a
member of globex sees and changes nothing of acme)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tenants.models import ApiKey, AuditEvent, Tenant
from tenants.scope import dangerously_unscoped
from tests.tenants.console.conftest import World, calls_insert, dead_letters_insert

pytestmark = pytest.mark.django_db


def fresh(tenant: Tenant) -> Tenant:
    with dangerously_unscoped():
        return Tenant.objects.get(pk=tenant.pk)


def refusals(action: str) -> int:
    with dangerously_unscoped():
        return AuditEvent.objects.filter(action=f"{action}.refused").count()


def pages(slug: str) -> list[str]:
    return [
        f"/tenants/{slug}/",
        f"/tenants/{slug}/provisioning/",
        f"/tenants/{slug}/lifecycle/",
        f"/tenants/{slug}/keys/",
        f"/tenants/{slug}/integrations/",
        f"/tenants/{slug}/effects/",
    ]


@pytest.mark.parametrize("who", ["platform", "admin", "viewer"])
def test_each_role_reads_every_page_of_its_tenant(world: World, who: str) -> None:
    client = world.client(who)
    for url in pages(world.acme.slug):
        response = client.get(url)
        assert response.status_code == 200, url
        assert world.acme.slug in response.content.decode()
        assert "script-src 'self'" in response["Content-Security-Policy"]


def test_globex_sees_nothing_of_acme_anywhere(world: World) -> None:
    client = world.client("globex")
    listing = client.get("/tenants/").content.decode()
    assert world.globex.slug in listing and world.acme.slug not in listing
    for url in pages(world.acme.slug):
        response = client.get(url)
        assert response.status_code == 403, url
        assert (
            f"No tenant {world.acme.slug} among the ones you may see." in response.content.decode()
        )
    # An unknown slug gets the same answer: existence is not revealed.
    unknown = client.get("/tenants/nosuchtenant/").content.decode()
    assert "No tenant nosuchtenant among the ones you may see." in unknown
    audit = client.get("/tenants/audit/").content.decode()
    assert world.acme.slug not in audit


def test_globex_changes_nothing_of_acme(world: World) -> None:
    client = world.client("globex")
    slug = world.acme.slug
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=world.acme)
    posts = [
        (
            f"/tenants/{slug}/lifecycle/",
            {"action": "delete", "delete-reason": "x", "delete-confirm": slug},
        ),
        (f"/tenants/{slug}/keys/", {"name": "stolen", "scopes": ["*"]}),
        (f"/tenants/{slug}/keys/{key.pk}/revoke/", {"confirm": "yes"}),
        (
            f"/tenants/{slug}/integrations/",
            {"provider": "n8n", "n8n-base_url": "https://n8n.example.com", "n8n-api_key": "k"},
        ),
        (f"/tenants/{slug}/provisioning/retry/", {}),
        (f"/tenants/{slug}/provisioning/first-key/", {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    acme = fresh(world.acme)
    assert acme.status == Tenant.Status.ACTIVE
    with dangerously_unscoped():
        assert ApiKey.objects.filter(tenant=world.acme).count() == 1
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None
        assert not world.acme.integrations.exists()
        assert AuditEvent.objects.filter(
            action__endswith=".refused", actor="user:globex-admin"
        ).count() == len(posts)


def test_tenants_list_filters_sorts_pages_and_shows_24h_calls(
    world: World, make_tenant: Any
) -> None:
    for index in range(55):
        make_tenant(f"bulk{index:02d}{world.acme.slug[-6:]}")
    calls_insert(world.acme.slug, ok=3, errors=1)
    dead_letters_insert(world.acme.slug, 2)
    client = world.client("platform")
    first = client.get("/tenants/").content.decode()
    assert "57 tenants" in first and "page 1 of 2" in first
    found = client.get("/tenants/", {"q": world.acme.slug}).content.decode()
    assert f'data-slug="{world.acme.slug}"' in found and "bulk00" not in found
    assert '<td class="num">4</td>' in found and "1 (25 %)" in found
    assert '<td class="num">2</td>' in found  # dead letters
    with dangerously_unscoped():
        Tenant.objects.filter(pk=world.globex.pk).update(status="suspended", plan="pro")
    suspended = client.get("/tenants/", {"status": "suspended", "plan": "pro"}).content.decode()
    assert world.globex.slug in suspended and world.acme.slug not in suspended
    newest = client.get("/tenants/", {"sort": "-created"}).content.decode()
    assert newest.index("bulk54") < newest.index("bulk10") and "bulk00" not in newest
    partial = client.get(
        "/tenants/", {"q": "bulk"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in partial and "bulk00" in partial


def test_lifecycle_by_role(world: World) -> None:
    from tenants.services import InvalidApiKey, api_key_authenticate

    slug = world.acme.slug
    url = f"/tenants/{slug}/lifecycle/"
    suspend = {"action": "suspend", "suspend-reason": "unpaid invoice", "suspend-confirm": slug}
    viewer = world.client("viewer").post(url, suspend)
    assert viewer.status_code == 403 and "Only platform admins" in viewer.content.decode()
    assert world.client("admin").post(url, suspend).status_code == 403
    assert fresh(world.acme).status == "active"
    assert refusals("tenant.suspend") == 2

    platform = world.client("platform")
    unconfirmed = platform.post(url, {**suspend, "suspend-confirm": "nope"})
    assert (
        unconfirmed.status_code == 400
        and f"Type {slug} to confirm." in unconfirmed.content.decode()
    )
    assert fresh(world.acme).status == "active"
    assert platform.post(url, suspend).status_code == 302
    assert fresh(world.acme).status == "suspended"
    with dangerously_unscoped(), pytest.raises(InvalidApiKey, match="suspended"):
        api_key_authenticate(secret=world.acme_key)
    # Over HTTP: 401, worded as for any refused key (mcp_tools.auth tells a guesser nothing).
    refused = Client().post(
        "/api/v1/tenant/get_tenant",
        {},
        "application/json",
        headers={"Authorization": f"Bearer {world.acme_key}"},
    )
    assert refused.status_code == 401 and "invalid API key" in refused.content.decode()
    with dangerously_unscoped():
        entry = AuditEvent.objects.get(action="tenant.suspend")
    assert entry.actor == "user:platform" and entry.details["reason"] == "unpaid invoice"
    assert platform.post(url, {"action": "resume", "resume-reason": "paid"}).status_code == 302
    assert fresh(world.acme).status == "active"

    admin = world.client("admin")
    assert (
        world.client("viewer")
        .post(url, {"action": "delete", "delete-reason": "x", "delete-confirm": slug})
        .status_code
        == 403
    )
    assert (
        admin.post(
            url, {"action": "delete", "delete-reason": "closing", "delete-confirm": slug}
        ).status_code
        == 302
    )
    assert fresh(world.acme).status == "deleted" and fresh(world.acme).deleted_at is not None
    assert (
        admin.post(
            url, {"action": "cancel_delete", "cancel_delete-reason": "changed mind"}
        ).status_code
        == 302
    )
    assert fresh(world.acme).status == "active" and fresh(world.acme).deleted_at is None
    missing_reason = admin.post(url, {"action": "delete", "delete-confirm": slug})
    assert (
        missing_reason.status_code == 400
        and "This field is required." in missing_reason.content.decode()
    )


def test_api_keys_by_role(world: World) -> None:
    slug = world.acme.slug
    url = f"/tenants/{slug}/keys/"
    assert world.client("viewer").post(url, {"name": "v", "scopes": ["*"]}).status_code == 403
    admin = world.client("admin")
    platform_scope = admin.post(url, {"name": "too-wide", "scopes": ["platform.admin"]})
    assert platform_scope.status_code == 400
    form_html = admin.get(url).content.decode().split('id="key-form"')[1]
    assert "platform.admin" not in form_html and "tenant_create_tenant" not in form_html
    # Least privilege by default: nothing pre-checked, each permission offered once, no tools.
    assert " checked" not in form_html
    offered = re.findall(r'name="scopes" value="([^"]+)"', form_html)
    assert len(offered) == len(set(offered)) and "agent.read" in offered
    assert not any("_" in value for value in offered)
    reader = admin.post(url, {"name": "reader", "scopes": ["tenant.read", "shopify.read"]})
    assert reader.status_code == 200
    preset = admin.post(url, {"name": "ro", "preset": "read only"})
    assert preset.status_code == 200
    nothing = admin.post(url, {"name": "empty"})
    assert nothing.status_code == 400 and "pick a preset" in nothing.content.decode()
    with dangerously_unscoped():
        assert ApiKey.objects.get(tenant=world.acme, name="reader").scopes == [
            "tenant.read",
            "shopify.read",
        ]
        read_only = ApiKey.objects.get(tenant=world.acme, name="ro").scopes
        assert read_only and all(scope.endswith(".read") for scope in read_only)
    created = admin.post(url, {"name": "shop-bot", "scopes": ["*", "tenant.admin"]})
    page = created.content.decode()
    assert created.status_code == 200 and 'id="new-key-secret">sos_live_' in page
    secret = page.split('id="new-key-secret">')[1].split("<")[0]
    assert secret not in admin.get(url).content.decode()  # shown once
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=world.acme, name="shop-bot")
        assert key.scopes == ["*", "tenant.admin"]
        assert AuditEvent.objects.filter(
            action="api_key.create", target=f"tenants.ApiKey:{key.pk}"
        ).exists()
    # Revoking asks first; only the confirmed post revokes.
    ask = admin.post(f"/tenants/{slug}/keys/{key.pk}/revoke/")
    assert ask.status_code == 200 and "Revoke key" in ask.content.decode()
    with dangerously_unscoped():
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert (
        admin.post(f"/tenants/{slug}/keys/{key.pk}/revoke/", {"confirm": "yes"}).status_code == 302
    )
    with dangerously_unscoped():
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    platform = world.client("platform")
    assert "platform.admin" in platform.get(url).content.decode()
    assert platform.post(url, {"name": "ops", "scopes": ["platform.admin"]}).status_code == 200


def test_integrations_secrets_are_write_only(world: World) -> None:
    slug = world.acme.slug
    url = f"/tenants/{slug}/integrations/"
    data = {
        "provider": "n8n",
        "n8n-base_url": "https://n8n.example.com",
        "n8n-api_key": "n8n-key-very-secret",
    }
    assert world.client("viewer").post(url, data).status_code == 403
    admin = world.client("admin")
    missing = admin.post(url, {"provider": "n8n", "n8n-base_url": "https://n8n.example.com"})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    assert admin.post(url, data).status_code == 302
    page = admin.get(url).content.decode()
    assert "connected" in page and "n8n-key-very-secret" not in page
    assert f"/hooks/n8n/{slug}/" in page
    with dangerously_unscoped():
        connection = world.acme.integrations.get()
        assert "n8n-key-very-secret" not in connection.credentials_ciphertext
        assert AuditEvent.objects.filter(action="integration.connect", tenant=world.acme).exists()


def test_audit_trail_filters_and_links(world: World) -> None:
    from tenants.audit import audit_record

    with dangerously_unscoped():
        audit_record(
            actor="user:platform",
            action="tenant.suspend",
            tenant=world.acme,
            target=world.acme.slug,
            details={"reason": "unpaid", "scopes": ["tenant.read", "shopify.read"]},
        )
        audit_record(
            actor="user:platform",
            action="tenant.suspend",
            tenant=world.globex,
            target=world.globex.slug,
        )
    viewer = world.client("viewer").get("/tenants/audit/", {"action": "tenant."}).content.decode()
    assert f'href="/tenants/{world.acme.slug}/"' in viewer and world.globex.slug not in viewer
    # Details read as fields, not as a Python dict's repr.
    assert "<strong>reason</strong>: unpaid" in viewer
    assert (
        "<strong>scopes</strong>: tenant.read, shopify.read" in viewer and "{&#x27;" not in viewer
    )
    platform = (
        world.client("platform")
        .get("/tenants/audit/", {"tenant": world.globex.slug})
        .content.decode()
    )
    assert world.globex.slug in platform and f"/tenants/{world.acme.slug}/" not in platform
    bad = world.client("platform").get("/tenants/audit/", {"since": "yesterday"})
    assert bad.status_code == 400 and "use YYYY-MM-DDTHH:MM" in bad.content.decode()


def test_only_platform_admins_create_tenants(world: World) -> None:
    for who in ("admin", "viewer", "globex"):
        response = world.client(who).post(
            "/tenants/new/", {"slug": "sneaky", "name": "S", "plan": "free"}
        )
        assert response.status_code == 403 and "Only platform admins" in response.content.decode()
    platform = world.client("platform")
    invalid = platform.post("/tenants/new/", {"slug": "Bad Slug", "name": "", "plan": "gold"})
    page = invalid.content.decode()
    assert (
        invalid.status_code == 400
        and "This field is required." in page
        and "gold is not one of" in page
    )
    with dangerously_unscoped():
        assert not Tenant.objects.filter(slug__in=["sneaky", "Bad Slug"]).exists()


def test_overview_links_to_the_charts_filtered_on_the_tenant(world: World) -> None:
    client = world.client("viewer")
    overview = client.get(f"/tenants/{world.acme.slug}/").content.decode()
    link = f"/telemetry/?tenant={world.acme.slug}&amp;range=24h"
    assert link in overview
    charts = client.get(f"/telemetry/?tenant={world.acme.slug}&range=24h").content.decode()
    assert f'<option value="{world.acme.slug}" selected>' in charts
    assert '<option value="24h" selected>' in charts
    # A tenant the person may not see is not preselected (nor listed).
    other = client.get(f"/telemetry/?tenant={world.globex.slug}").content.decode()
    assert world.globex.slug not in other


def test_test_connection_shows_what_each_provider_answered(
    world: World, connect: Any, saas: Any
) -> None:
    from integrations.services import integration_connect

    for provider in ("shopify", "whatsapp", "n8n", "clerk"):
        connect(world.acme, provider, saas.url)
    admin = world.client("admin")
    answers = {
        "shopify": "Shopify: shop &#x27;Stand-in Shop&#x27; (stand-in.myshopify.com)",
        "whatsapp": "WhatsApp: +1 415-555-0100 (Stand-in Store, quality GREEN)",
        "n8n": "n8n: workflows Order to WhatsApp, Draft",
        "clerk": "Clerk: the signing secret is a valid whsec_ secret",
    }
    for provider, answer in answers.items():
        page = admin.post(f"/tenants/{world.acme.slug}/integrations/{provider}/test/")
        assert page.status_code == 200
        assert f"Connection works. {answer}" in page.content.decode()
    # A wrong token: the provider's refusal is shown as it came.
    integration_connect(
        tenant=world.acme,
        provider="n8n",
        config={"base_url": saas.url},
        credentials={"api_key": "wrong"},
    )
    failed = admin.post(f"/tenants/{world.acme.slug}/integrations/n8n/test/").content.decode()
    assert "Connection failed: n8n refused the API key (HTTP 401)" in failed
    # Meta's answer to an expired token says what to do.
    integration_connect(
        tenant=world.acme,
        provider="whatsapp",
        config={"phone_number_id": "106540352242922", "api_base_url": saas.url},
        credentials={"access_token": "EAAexpired"},
    )
    expired = admin.post(f"/tenants/{world.acme.slug}/integrations/whatsapp/test/")
    assert "Connection failed: the WhatsApp access token has expired" in expired.content.decode()
    for who in ("viewer", "globex"):
        response = world.client(who).post(f"/tenants/{world.acme.slug}/integrations/n8n/test/")
        assert response.status_code == 403
    with dangerously_unscoped():
        tests = AuditEvent.objects.filter(action="integration.test", tenant=world.acme)
        assert sorted(tests.values_list("details__ok", flat=True)) == [
            False,
            False,
            True,
            True,
            True,
            True,
        ]


def test_plan_and_limits_are_platform_decisions(world: World) -> None:
    url = f"/tenants/{world.acme.slug}/plan/"
    data = {"plan-plan": "enterprise", "plan-rate_limit_per_minute": "5000", "plan-reason": "deal"}
    for who in ("admin", "viewer", "globex"):
        assert world.client(who).post(url, data).status_code == 403
    assert (fresh(world.acme).plan, fresh(world.acme).rate_limit_per_minute) == ("free", None)
    assert refusals("tenant.plan_set") == 3
    platform = world.client("platform")
    assert (
        'id="form-plan"' in platform.get(f"/tenants/{world.acme.slug}/lifecycle/").content.decode()
    )
    assert (
        'id="form-plan"'
        not in world.client("admin").get(f"/tenants/{world.acme.slug}/lifecycle/").content.decode()
    )
    bad = platform.post(url, {**data, "plan-plan": "gold", "plan-rate_limit_per_minute": "0"})
    page = bad.content.decode()
    assert bad.status_code == 400 and "gold is not one of" in page
    assert "greater than or equal to 1" in page
    assert platform.post(url, data).status_code == 302
    acme = fresh(world.acme)
    assert (acme.plan, acme.rate_limit_per_minute) == ("enterprise", 5000)
    with dangerously_unscoped():
        entry = AuditEvent.objects.get(action="tenant.plan_set")
    assert entry.details["from"]["plan"] == "free" and entry.details["reason"] == "deal"
    overview = platform.get(f"/tenants/{world.acme.slug}/").content.decode()
    assert "of 5000 requests in the last minute" in overview


def test_overview_shows_pending_and_failed_outside_effects_of_its_tenant_only(world: World) -> None:
    from effects.models import Effect
    from tenants.scope import tenant_scope

    with tenant_scope(world.acme.pk):
        Effect.objects.create(
            tenant=world.acme,
            kind="whatsapp.send_message",
            key="evt-1",
            payload={},
            state=Effect.State.FAILED,
            attempts=4,
            last_error="upstream_error: whatsapp answered HTTP 500",
        )
        Effect.objects.create(
            tenant=world.acme, kind="n8n.trigger_workflow", key="evt-2", payload={}
        )
        Effect.objects.create(
            tenant=world.acme,
            kind="n8n.trigger_workflow",
            key="evt-3",
            payload={},
            state=Effect.State.DONE,
        )

    admin_view = world.client("admin").get(f"/tenants/{world.acme.slug}/").content.decode()
    assert "1 pending, 1 failed." in admin_view
    assert "whatsapp answered HTTP 500" in admin_view and "evt-3" not in admin_view
    assert "retry failed ones" in admin_view
    assert "/admin/effects/" not in admin_view  # the console's own page, open to tenant admins
    viewer = world.client("viewer").get(f"/tenants/{world.acme.slug}/").content.decode()
    assert "1 pending, 1 failed." in viewer and "retry failed ones" not in viewer
    assert f'href="/tenants/{world.acme.slug}/effects/"' in viewer
    globex = world.client("globex").get(f"/tenants/{world.globex.slug}/").content.decode()
    assert "0 pending, 0 failed." in globex and "evt-1" not in globex


def test_effects_page_lists_a_tenants_effects_and_its_admin_retries_a_failed_one(
    world: World,
) -> None:
    from effects.models import Effect
    from tenants.scope import tenant_scope

    with tenant_scope(world.acme.pk):
        failed = Effect.objects.create(
            tenant=world.acme,
            kind="whatsapp.send_message",
            key="evt-1",
            payload={},
            state=Effect.State.FAILED,
            attempts=4,
            last_error="upstream_error: whatsapp answered HTTP 500",
        )
        done = Effect.objects.create(
            tenant=world.acme,
            kind="n8n.trigger_workflow",
            key="evt-2",
            payload={},
            state=Effect.State.DONE,
        )
    url = f"/tenants/{world.acme.slug}/effects/"
    retry = f"{url}{failed.pk}/retry/"

    viewer = world.client("viewer")
    listed = viewer.get(url).content.decode()
    assert "evt-1" in listed and "evt-2" in listed and "HTTP 500" in listed
    assert retry not in listed
    assert "evt-2" not in viewer.get(url, {"state": "failed"}).content.decode()
    assert viewer.post(retry).status_code == 403
    assert refusals("effect.retry") == 1
    globex = world.client("globex")
    assert globex.get(url).status_code == 403 and globex.post(retry).status_code == 403

    admin = world.client("admin")
    assert retry in admin.get(url).content.decode()
    assert admin.post(f"{url}{done.pk}/retry/").status_code == 302  # not failed: left alone
    assert admin.post(f"{url}999999/retry/").status_code == 404
    answer = admin.post(retry)
    assert answer.status_code == 302 and answer["Location"] == f"{url}?state=failed"
    with dangerously_unscoped():
        failed.refresh_from_db()
        done.refresh_from_db()
        entries = list(AuditEvent.objects.filter(action="effect.retry"))
    # Attempts from zero and queued again: performed once more (tasks run inline in tests),
    # where its empty payload fails again.
    assert failed.attempts == 1 and "ValidationError" in failed.last_error
    assert done.state == Effect.State.DONE
    assert [(e.actor, e.target) for e in entries] == [
        ("user:acme-admin", "whatsapp.send_message:evt-1")
    ]


def test_overview_shows_the_dead_letters_the_tenants_list_counts(world: World) -> None:
    """The tenants list's dead-letter figure, on the overview from the same query, and the
    twin topic that received them listed under the topic it serves."""
    slug = world.acme.slug
    dead_letters_insert(slug, 3)
    client = world.client("viewer")
    listing = client.get("/tenants/").content.decode()
    assert '<td class="num">3</td>' in listing
    overview = client.get(f"/tenants/{slug}/").content.decode()
    assert "3 dead letters in 24 h" in overview
    topics = overview.split('id="topics"')[1]
    assert topics.index(f"{slug}.shopify.webhooks<") < topics.index(f"{slug}.shopify.webhooks.dlq")
    assert f"{slug}.whatsapp.inbound.dlq" not in topics  # an empty twin is not listed
    quiet = world.client("globex").get(f"/tenants/{world.globex.slug}/").content.decode()
    assert "0 dead letters in 24 h" in quiet and ".dlq<" not in quiet


def test_overview_counts_every_call_as_the_tenants_list_does(world: World) -> None:
    """More operations than the per-operation table shows: the calls figure still counts all
    of them, as the tenants list does."""
    slug = world.acme.slug
    for n in range(12):
        calls_insert(slug, ok=1, errors=1 if n == 0 else 0, operation=f"tenant_op{n}")
    client = world.client("viewer")
    row = client.get("/tenants/").content.decode().split(f'data-slug="{slug}"')[1]
    assert '<td class="num">13</td>' in row
    assert "13 calls, 1 errors." in client.get(f"/tenants/{slug}/").content.decode()
