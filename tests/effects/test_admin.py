"""Effects in the admin: each tenant admin sees their tenant's, filtered by state and kind, and
retries a failed one."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from effects.models import Effect
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)


def test_tenant_admins_see_their_effects_and_retry_failed_ones(
    make_tenant: Any, connect: Any, saas: Any, settings: Any
) -> None:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute
    from tenants.models import Membership

    settings.EFFECT_RETRY_DELAYS = []  # one attempt, then failed
    acme, globex = make_tenant("acme"), make_tenant("globex")
    for tk in (acme, globex):
        connect(tk.tenant, "whatsapp", saas.url)
    saas.state.unavailable = 1
    failed = execute(
        "whatsapp_send_message",
        {"to": "+14155550100", "text": "for acme"},
        principal=principal_from_api_key(acme.key),
        surface="rest",
    )
    assert failed.output is not None and failed.output["effect"]["state"] == "failed"
    execute(
        "whatsapp_send_message",
        {"to": "+14155550199", "text": "for globex"},
        principal=principal_from_api_key(globex.key),
        surface="rest",
    )
    user = get_user_model().objects.create_user("acme-ops", password="pw-acme-ops-1", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_effect", "change_effect"])
    )
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=acme.tenant, role="admin")
    client = Client()
    assert client.login(username="acme-ops", password="pw-acme-ops-1")
    page = client.get("/admin/effects/effect/?state__exact=failed").content.decode()
    assert "whatsapp.send_message" in page and "failed" in page
    everything = client.get("/admin/effects/effect/").content.decode()
    assert "globex" not in everything
    effect_id = failed.output["effect"]["effect_id"]
    response = client.post(
        "/admin/effects/effect/",
        {"action": "retry", "_selected_action": [str(effect_id)]},
        follow=True,
    )
    assert "1 effect(s) queued again" in response.content.decode()
    with dangerously_unscoped():
        assert Effect.objects.get(pk=effect_id).state == Effect.State.DONE
    bodies = [body["text"]["body"] for _, body in saas.state.applied_of("whatsapp")]
    assert sorted(bodies) == ["for acme", "for globex"]
