"""n8n against its stand-in: which topics are forwarded, header authentication of triggers,
exact large ids, pagination and the errors n8n answers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from effects.models import Effect
from effects.services import effect_perform
from integrations.handlers import n8n_forward
from integrations.models import N8nTrigger
from integrations.n8n.topics import FORWARD_GROUP, FORWARDED_TOPICS
from integrations.n8n.triggers import TRIGGER_AUTH_HEADER
from mcp_tools.context import Principal
from mcp_tools.executor import execute
from smarteros.events.catalog import CATALOG
from smarteros.events.consumers import registrations
from smarteros.events.envelope import Envelope
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.fixtures.deliveries import shopify_order
from tests.fixtures.standins.n8n import n8n_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme(make_tenant: Any, connect: Any, saas: Any) -> Any:
    from tenants.models import ApiKey

    tk = make_tenant("acme")
    connect(tk.tenant, "n8n", saas.url)
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=tk.tenant)
    return Principal(tenant=tk.tenant, api_key=key)


def call(principal: Principal, name: str, arguments: dict[str, Any]) -> Any:
    return execute(name, arguments, principal=principal, surface="rest")


def test_every_topic_a_trigger_accepts_is_subscribed_by_the_forwarding_flow() -> None:
    per_tenant = {spec.name for spec in CATALOG if spec.per_tenant}
    # All of the tenant's topics but the one forwards themselves emit on (a trigger on it would
    # start itself again for every event it forwards).
    assert set(FORWARDED_TOPICS) == per_tenant - {"n8n.automation.trigger"}
    subscribed = {r.topic for r in registrations() if r.group == FORWARD_GROUP}
    assert subscribed == {f"*.{topic}" for topic in FORWARDED_TOPICS}
    assert all(r.event_type == "*" for r in registrations() if r.group == FORWARD_GROUP)


def test_create_trigger_accepts_exactly_the_forwarded_topics(acme: Principal) -> None:
    for topic in FORWARDED_TOPICS:
        out = call(acme, "n8n_create_trigger", {"topic": topic, "webhook_path": "sink"})
        assert out.ok, (topic, out.error)
    refused = call(
        acme, "n8n_create_trigger", {"topic": "n8n.automation.trigger", "webhook_path": "sink"}
    )
    assert refused.error is not None and refused.error.code == "invalid_input"
    assert "topic" in refused.error.message
    with tenant_scope(acme.tenant.pk):
        assert N8nTrigger.objects.count() == len(FORWARDED_TOPICS)


def test_a_trigger_s_secret_is_shown_once_stored_as_vault_ciphertext_and_rotatable(
    acme: Principal,
) -> None:
    args = {"topic": "whatsapp.inbound", "webhook_path": "inbound-chat"}
    first = call(acme, "n8n_create_trigger", args)
    assert first.ok, first.error
    assert first.output["created"] is True
    assert first.output["auth_header_name"] == TRIGGER_AUTH_HEADER
    secret = first.output["auth_header_value"]
    assert secret and len(secret) >= 40
    with tenant_scope(acme.tenant.pk):
        stored = N8nTrigger.objects.get().auth_secret_ciphertext
    assert re.match(r"vault:v\d+:", stored) and secret not in stored  # any key version

    again = call(acme, "n8n_create_trigger", args)
    assert (again.output["created"], again.output["auth_header_value"]) == (False, None)

    rotated = call(acme, "n8n_create_trigger", {**args, "rotate_secret": True})
    assert rotated.output["auth_header_value"] not in (None, secret)


def forward_and_perform(principal: Principal, topic: str, envelope: Envelope) -> list[Effect]:
    with tenant_scope(principal.tenant.pk):
        n8n_forward(tenant=principal.tenant, topic=topic, envelope=envelope)
        effects = list(Effect.objects.filter(kind="n8n.trigger_workflow").order_by("pk"))
    for effect in effects:
        effect_perform(effect_id=effect.pk, tenant_id=principal.tenant.pk)
    with tenant_scope(principal.tenant.pk):
        return list(Effect.objects.filter(pk__in=[e.pk for e in effects]).order_by("pk"))


def test_a_forward_carries_the_trigger_s_secret_header_and_the_exact_order_id(
    acme: Principal, saas: Any
) -> None:
    made = call(acme, "n8n_create_trigger", {"topic": "shopify.webhooks", "webhook_path": "orders"})
    secret = made.output["auth_header_value"]
    n8n_of(saas.state).webhook_auth["orders"] = (TRIGGER_AUTH_HEADER, secret)
    envelope = Envelope(
        type="shopify.webhook.received",
        source="test",
        tenant="acme",
        data={"topic": "orders/create", "payload": shopify_order()},
    )
    [effect] = forward_and_perform(acme, "shopify.webhooks", envelope)
    assert effect.state == Effect.State.DONE, effect.last_error
    [(_, _, headers, body)] = [r for r in saas.state.requests if r[1] == "/webhook/orders"]
    assert headers[TRIGGER_AUTH_HEADER] == secret
    payload = body["event"]["data"]["payload"]
    assert payload["id"] == "820982911946154508"
    assert payload["line_items"][0]["id"] == "866550311766439020"
    # The effect's record holds the trigger's id, never its secret.
    assert secret not in json.dumps(effect.payload)


def test_a_forward_whose_secret_n8n_refuses_fails_at_once_saying_what_to_fix(
    acme: Principal, saas: Any
) -> None:
    call(acme, "n8n_create_trigger", {"topic": "whatsapp.inbound", "webhook_path": "chat"})
    n8n_of(saas.state).webhook_auth["chat"] = (TRIGGER_AUTH_HEADER, "not-the-secret")
    envelope = Envelope(
        type="whatsapp.message.received",
        source="test",
        tenant="acme",
        data={"from": "+14155550100", "message_id": "wamid.1", "text": "hi"},
    )
    [effect] = forward_and_perform(acme, "whatsapp.inbound", envelope)
    assert effect.state == Effect.State.FAILED
    # Retrying with the same secret cannot pass: failed on the first attempt, naming the fix.
    assert effect.attempts == 1
    assert effect.last_error.startswith("integration_auth_failed")
    # The status says what happened; n8n's own words (its body) are not repeated.
    assert (
        "HTTP 403" in effect.last_error and "Authorization data is wrong" not in effect.last_error
    )
    assert "X-SmarterOS-Trigger-Secret" in effect.last_error
    assert saas.state.applied_of("n8n") == []


def test_events_of_other_topics_or_types_are_not_forwarded(acme: Principal, saas: Any) -> None:
    call(
        acme,
        "n8n_create_trigger",
        {
            "topic": "whatsapp.outbound",
            "webhook_path": "status",
            "event_type": "whatsapp.message.status",
        },
    )
    sent = Envelope(type="whatsapp.message.sent", source="test", tenant="acme", data={})
    with tenant_scope(acme.tenant.pk):
        assert n8n_forward(tenant=acme.tenant, topic="whatsapp.outbound", envelope=sent) == 0
        assert n8n_forward(tenant=acme.tenant, topic="whatsapp.inbound", envelope=sent) == 0
        status = Envelope(type="whatsapp.message.status", source="test", tenant="acme", data={})
        assert n8n_forward(tenant=acme.tenant, topic="whatsapp.outbound", envelope=status) == 1


def test_a_new_trigger_gets_events_from_its_creation_on_not_the_topic_s_history(
    acme: Principal,
) -> None:
    # The forwarding group starts reading a topic when its first trigger appears, from the
    # topic's start: what happened before the trigger existed is not posted to the workflow.
    earlier = Envelope(type="shopify.webhook.received", source="test", tenant="acme", data={})
    call(acme, "n8n_create_trigger", {"topic": "shopify.webhooks", "webhook_path": "orders"})
    later = Envelope(type="shopify.webhook.received", source="test", tenant="acme", data={})
    with tenant_scope(acme.tenant.pk):
        assert n8n_forward(tenant=acme.tenant, topic="shopify.webhooks", envelope=earlier) == 0
        assert n8n_forward(tenant=acme.tenant, topic="shopify.webhooks", envelope=later) == 1


def test_trigger_workflow_sends_and_returns_large_ids_as_strings(
    acme: Principal, saas: Any
) -> None:
    out = call(
        acme,
        "n8n_trigger_workflow",
        {"webhook_path": "direct", "payload": {"order_id": 820982911946154508, "qty": 2}},
    )
    assert out.ok, out.error
    [body] = [body for _, body in saas.state.applied_of("n8n")]
    assert body == {"path": "direct", "order_id": "820982911946154508", "qty": 2}


def test_large_integers_in_passed_through_data_reach_mcp_and_rest_callers_as_strings(
    acme: Principal, saas: Any
) -> None:
    item = {"json": {"body": {"id": 820982911946154508, "quantity": 1}}}
    n8n_of(saas.state).execution_data = {
        "resultData": {"runData": {"Webhook": [{"data": {"main": [[item]]}}]}}
    }
    out = call(acme, "n8n_get_execution", {"execution_id": "7", "include_data": True})
    assert out.ok, out.error
    [[received]] = out.output["data"]["resultData"]["runData"]["Webhook"][0]["data"]["main"]
    assert received["json"]["body"] == {"id": "820982911946154508", "quantity": 1}
    # The JSON text (REST body, MCP text content) says the same.
    assert json.loads(out.output_json) == out.output
    assert '"id":"820982911946154508"' in out.output_json


def test_workflows_are_listed_page_by_page(acme: Principal, saas: Any) -> None:
    n8n_of(saas.state).workflows = [
        {"id": f"wf{i}", "name": f"Flow {i}", "active": i % 2 == 0} for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = call(
            acme, "n8n_list_workflows", {"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert page.ok, page.error
        assert len(page.output["workflows"]) <= 2
        seen += [w["id"] for w in page.output["workflows"]]
        cursor = page.output["next_cursor"]
        if not cursor:
            break
    assert seen == [f"wf{i}" for i in range(5)]
    active = call(acme, "n8n_list_workflows", {"active": True})
    assert [w["id"] for w in active.output["workflows"]] == ["wf0", "wf2", "wf4"]


def test_an_execution_s_data_is_returned_on_request(acme: Principal) -> None:
    plain = call(acme, "n8n_get_execution", {"execution_id": "42"})
    assert plain.ok and plain.output["data"] is None
    full = call(acme, "n8n_get_execution", {"execution_id": "42", "include_data": True})
    assert full.ok and "runData" in full.output["data"]["resultData"]
    missing = call(acme, "n8n_get_execution", {"execution_id": "404", "include_data": True})
    assert (missing.error.code, missing.error.http_status) == ("not_found", 404)


def test_a_trigger_added_in_the_admin_gets_its_secret_shown_once(acme: Principal) -> None:
    from django.contrib.admin.sites import site
    from django.contrib.auth.models import User
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.test import RequestFactory

    request = RequestFactory().post("/admin/integrations/n8ntrigger/add/")
    request.user = User(username="root", is_staff=True, is_superuser=True)
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    admin = site._registry[N8nTrigger]
    form_class = admin.get_form(request)
    # A platform admin's request: the tenants table is under row-level security.
    with dangerously_unscoped():
        refused = form_class(
            data={"tenant": acme.tenant.pk, "topic": "n8n.automation.trigger", "webhook_path": "x"}
        )
        assert not refused.is_valid() and "topic" in refused.errors
        form = form_class(
            data={"tenant": acme.tenant.pk, "topic": "shopify.inventory", "webhook_path": "stock"}
        )
        assert form.is_valid(), form.errors
        admin.save_model(request, form.save(commit=False), form, False)
        trigger = N8nTrigger.objects.get()
    # The secret is shown once on a no-store page (tests/tenants/test_shown_once.py), never
    # through the messages cookie.
    assert [str(m) for m in request._messages] == []  # type: ignore[attr-defined]
    [(label, secret)] = request._secrets_issued  # type: ignore[attr-defined]
    assert TRIGGER_AUTH_HEADER in label
    assert re.match(r"vault:v\d+:", trigger.auth_secret_ciphertext)
    assert len(secret) >= 40 and secret not in trigger.auth_secret_ciphertext
