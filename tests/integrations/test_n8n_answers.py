"""What n8n's webhooks answer, as a workflow's Webhook node is set: any 2xx is a workflow
started (JSON, text or no body at all), never retried into a second run; a 404 right after
publishing is waited out briefly; the /webhook/ and /api/ prefixes follow the instance's."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.services import integration_connect
from mcp_tools.context import Principal
from mcp_tools.executor import execute
from tenants.models import ApiKey
from tenants.scope import dangerously_unscoped
from tests.fixtures.saas import N8N_KEY
from tests.fixtures.standins.n8n import n8n_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.EFFECT_RETRY_DELAYS = [0.0, 0.0, 0.0, 0.0]  # retried at once, if ever
    monkeypatch.setattr("integrations.n8n.client.NOT_REGISTERED_WAITS", (0.05, 0.05, 0.05))


def principal_for(tk: Any) -> Principal:
    with dangerously_unscoped():
        return Principal(tenant=tk.tenant, api_key=ApiKey.objects.get(tenant=tk.tenant))


@pytest.fixture
def acme(make_tenant: Any, connect: Any, saas: Any) -> Principal:
    tk = make_tenant("acme")
    connect(tk.tenant, "n8n", saas.url)
    return principal_for(tk)


def trigger(principal: Principal, path: str) -> Any:
    result = execute(
        "n8n_trigger_workflow",
        {"webhook_path": path, "payload": {"order": 1}},
        principal=principal,
        surface="rest",
    )
    assert result.ok, result.error
    return result.output


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((200, "", b""), None),  # "No Response Body"
        ((200, "text/html; charset=utf-8", b""), None),
        ((200, "text/plain; charset=utf-8", b"Workflow got started"), "Workflow got started"),
        ((204, "", b""), None),
        ((200, "application/json", b'{"message":"Workflow was started"}'), None),
    ],
)
def test_any_2xx_is_one_run_whatever_its_body(
    acme: Principal, saas: Any, answer: tuple[int, str, bytes], expected: Any
) -> None:
    n8n_of(saas.state).answers["orders"] = answer
    out = trigger(acme, "orders")
    effect = out["effect"]
    assert (effect["state"], effect["attempts"]) == ("done", 1), effect
    if answer[1] == "application/json":
        expected = {"message": "Workflow was started"}
    assert out["response"] == expected
    assert len(saas.state.applied_of("n8n")) == 1  # the workflow ran once


def test_a_webhook_published_a_moment_ago_is_waited_for(acme: Principal, saas: Any) -> None:
    n8n_of(saas.state).registering["fresh"] = 2  # n8n is still registering it
    out = trigger(acme, "fresh")
    assert out["effect"]["state"] == "done", out["effect"]
    assert len(saas.state.applied_of("n8n")) == 1
    posts = [p for m, p, _, _ in saas.state.requests if m == "POST" and p == "/webhook/fresh"]
    assert len(posts) == 3


def test_a_webhook_that_stays_unregistered_fails_at_once_saying_what_to_do(
    acme: Principal, saas: Any
) -> None:
    n8n_of(saas.state).unregistered.add("nowhere")
    out = trigger(acme, "nowhere")
    effect = out["effect"]
    assert (effect["state"], effect["attempts"]) == ("failed", 1)
    assert effect["last_error"].startswith("not_found: n8n has no active production webhook")
    assert "publish (activate) the workflow" in effect["last_error"]
    posts = [p for m, p, _, _ in saas.state.requests if p == "/webhook/nowhere"]
    assert len(posts) == 4  # the first post and three brief retries, then no more


def test_the_instance_s_own_prefixes_are_used(make_tenant: Any, saas: Any) -> None:
    n8n = n8n_of(saas.state)
    n8n.webhook_prefix, n8n.api_prefix = "hooks/n8n", "public-api"
    tk = make_tenant("prefixed")
    integration_connect(
        tenant=tk.tenant,
        provider="n8n",
        config={"base_url": saas.url, "webhook_prefix": "/hooks/n8n/", "api_prefix": "public-api"},
        credentials={"api_key": N8N_KEY},
    )
    principal = principal_for(tk)
    out = trigger(principal, "orders")
    assert out["effect"]["state"] == "done", out["effect"]
    assert [p for m, p, _, _ in saas.state.requests if m == "POST"] == ["/hooks/n8n/orders"]
    listed = execute("n8n_list_workflows", {}, principal=principal, surface="rest")
    assert listed.ok and listed.output is not None, listed.error
    assert [w["id"] for w in listed.output["workflows"]] == ["wf1", "wf2"]


@pytest.mark.parametrize("prefix", ["../admin", "web hook", "a//b", "?x=1"])
def test_a_prefix_that_is_not_a_path_is_refused_on_save(
    make_tenant: Any, saas: Any, prefix: str
) -> None:
    tk = make_tenant("badprefix")
    for setting in ("webhook_prefix", "api_prefix"):
        with pytest.raises(ValueError, match=f"^{setting}: "):
            integration_connect(
                tenant=tk.tenant,
                provider="n8n",
                config={"base_url": saas.url, setting: prefix},
                credentials={"api_key": N8N_KEY},
            )
