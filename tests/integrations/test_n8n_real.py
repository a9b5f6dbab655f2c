"""The n8n client and flows against a real n8n (the pinned version, see tests/fixtures/real_n8n.py):
pagination, a Header Auth webhook started by a forwarded Shopify order whose id arrives exact,
a wrong secret refused, a missing execution as not_found. SMARTEROS_REAL_N8N=0 skips them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from effects.models import Effect
from effects.services import effect_perform
from integrations.handlers import n8n_forward
from integrations.n8n.triggers import TRIGGER_AUTH_HEADER
from mcp_tools.context import Principal
from mcp_tools.executor import execute
from smarteros.events.envelope import Envelope
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.fixtures.deliveries import N8N_WEBHOOK_SECRET, shopify_order
from tests.fixtures.real_n8n import RealN8n, real_n8n_started

pytestmark = pytest.mark.django_db(transaction=True)

ORDER_ID = 820982911946154508  # beyond 2^53: JavaScript would read 820982911946154500


@pytest.fixture(scope="session")
def real_n8n() -> Iterator[RealN8n]:
    """One n8n for the session: it takes several seconds to start."""
    with real_n8n_started() as n8n:
        yield n8n


@pytest.fixture
def acme(make_tenant: Any, real_n8n: RealN8n) -> Principal:
    from integrations.services import integration_connect
    from tenants.models import ApiKey

    tk = make_tenant("acme")
    integration_connect(
        tenant=tk.tenant,
        provider="n8n",
        config={"base_url": real_n8n.base_url},
        credentials={"api_key": real_n8n.api_key, "webhook_secret": N8N_WEBHOOK_SECRET},
    )
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=tk.tenant)
    return Principal(tenant=tk.tenant, api_key=key)


def call(principal: Principal, name: str, arguments: dict[str, Any]) -> Any:
    result = execute(name, arguments, principal=principal, surface="rest")
    return result


def forward_order(principal: Principal) -> Effect:
    """A verified Shopify orders/create, as the webhook endpoint queues it, through the forwarding
    flow and its effect."""
    envelope = Envelope(
        type="shopify.webhook.received",
        source="integrations.shopify",
        tenant=principal.tenant.slug,
        data={"topic": "orders/create", "payload": shopify_order(ORDER_ID)},
    )
    with tenant_scope(principal.tenant.pk):
        assert n8n_forward(tenant=principal.tenant, topic="shopify.webhooks", envelope=envelope)
        effect = Effect.objects.filter(kind="n8n.trigger_workflow").latest("pk")
    effect_perform(effect_id=effect.pk, tenant_id=principal.tenant.pk)
    with tenant_scope(principal.tenant.pk):
        return Effect.objects.get(pk=effect.pk)


def wait_for_execution(n8n: RealN8n, workflow_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [e for e in n8n.executions(workflow_id) if e.get("finished")]
        if done:
            return done[0]
        time.sleep(0.3)
    raise AssertionError(f"no finished execution of workflow {workflow_id} in {timeout}s")


def test_workflows_are_listed_page_by_page(acme: Principal, real_n8n: RealN8n) -> None:
    made = {
        real_n8n.header_auth_webhook(path=f"page-{uuid.uuid4().hex[:8]}", header="X-A", secret="s")
        for _ in range(3)
    }
    seen: list[str] = []
    cursor = None
    while True:
        page = call(
            acme, "n8n_list_workflows", {"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert page.ok, page.error
        assert 1 <= len(page.output["workflows"]) <= 2
        seen += [w["id"] for w in page.output["workflows"]]
        cursor = page.output["next_cursor"]
        if not cursor:
            break
    assert made <= set(seen) and len(seen) == len(set(seen))
    active = call(acme, "n8n_list_workflows", {"active": True, "limit": 250})
    assert made <= {w["id"] for w in active.output["workflows"] if w["active"]}


def test_a_forwarded_order_reaches_n8n_with_its_exact_id_through_header_auth(
    acme: Principal, real_n8n: RealN8n
) -> None:
    path = f"orders-{uuid.uuid4().hex[:8]}"
    made = call(acme, "n8n_create_trigger", {"topic": "shopify.webhooks", "webhook_path": path})
    assert made.ok, made.error
    header, secret = made.output["auth_header_name"], made.output["auth_header_value"]
    # What the user does in n8n: a Webhook node with a Header Auth credential of that name/value.
    workflow_id = real_n8n.header_auth_webhook(path=path, header=header, secret=secret)

    effect = forward_order(acme)
    assert effect.state == Effect.State.DONE, effect.last_error
    assert (effect.result or {}).get("response") == {"message": "Workflow was started"}

    execution = wait_for_execution(real_n8n, workflow_id)
    got = call(
        acme, "n8n_get_execution", {"execution_id": str(execution["id"]), "include_data": True}
    )
    assert got.ok, got.error
    assert (got.output["status"], got.output["finished"]) == ("success", True)
    assert got.output["workflow_id"] == workflow_id
    [[item]] = got.output["data"]["resultData"]["runData"]["Webhook"][0]["data"]["main"]
    received = item["json"]
    # The header n8n checked, as it received it (header names arrive lower-cased).
    assert received["headers"][TRIGGER_AUTH_HEADER.lower()] == secret
    order = received["body"]["event"]["data"]["payload"]
    assert order["id"] == str(ORDER_ID)  # exact: 820982911946154508, not ...500
    assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{ORDER_ID}"
    assert order["line_items"][0]["id"] == "866550311766439020"
    assert order["email"] == "jon@example.com"


@pytest.mark.parametrize(
    ("options", "answer"),
    [
        ({"noResponseBody": True}, None),  # the Webhook node's "No Response Body"
        ({"responseData": "Thanks, got it"}, "Thanks, got it"),  # a text answer
    ],
)
def test_a_workflow_answering_without_json_runs_exactly_once(
    acme: Principal, real_n8n: RealN8n, options: dict[str, Any], answer: Any, settings: Any
) -> None:
    settings.EFFECT_RETRY_DELAYS = [0.0, 0.0, 0.0, 0.0]  # were it retried, it would be at once
    path = f"quiet-{uuid.uuid4().hex[:8]}"
    made = call(acme, "n8n_create_trigger", {"topic": "shopify.webhooks", "webhook_path": path})
    header, secret = made.output["auth_header_name"], made.output["auth_header_value"]
    workflow_id = real_n8n.header_auth_webhook(
        path=path, header=header, secret=secret, options=options
    )

    effect = forward_order(acme)
    assert (effect.state, effect.attempts) == (Effect.State.DONE, 1), effect.last_error
    assert (effect.result or {}).get("response") == answer
    wait_for_execution(real_n8n, workflow_id)
    time.sleep(1.0)  # a second run, had there been one, would be listed by now
    assert len(real_n8n.executions(workflow_id)) == 1


def test_a_wrong_secret_is_refused_by_n8n(acme: Principal, real_n8n: RealN8n) -> None:
    path = f"rotated-{uuid.uuid4().hex[:8]}"
    args = {"topic": "shopify.webhooks", "webhook_path": path}
    old = call(acme, "n8n_create_trigger", args).output["auth_header_value"]
    workflow_id = real_n8n.header_auth_webhook(path=path, header=TRIGGER_AUTH_HEADER, secret=old)
    # A new secret the workflow's credential was not given: n8n must refuse the forward.
    assert call(acme, "n8n_create_trigger", {**args, "rotate_secret": True}).ok

    effect = forward_order(acme)
    assert effect.state == Effect.State.FAILED
    assert effect.attempts == 1  # not retried: the same secret cannot pass
    assert effect.last_error.startswith("integration_auth_failed")
    # n8n's own body is not echoed (provider bodies never are): the status and what to fix.
    assert (
        "HTTP 403" in effect.last_error and "Authorization data is wrong" not in effect.last_error
    )
    assert real_n8n.executions(workflow_id) == []

    unauthenticated = call(acme, "n8n_trigger_workflow", {"webhook_path": path, "payload": {}})
    assert unauthenticated.output["effect"]["state"] == "failed"
    assert real_n8n.executions(workflow_id) == []


def test_a_missing_execution_is_not_found(acme: Principal) -> None:
    missing = call(acme, "n8n_get_execution", {"execution_id": "987654321"})
    assert missing.error is not None
    assert (missing.error.code, missing.error.http_status) == ("not_found", 404)
    assert "n8n has no /api/v1/executions/987654321" in missing.error.message
