"""The platform's daily LLM token budget: set per plan or per tenant by a platform admin, only
lowered by the tenant's llm connection; spent, it stops the bot and the tools that spend, names
who set it and when it renews, leaves other tenants alone, and the console shows the use."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from effects.models import Effect
from integrations.llm.errors import LlmBudgetExhausted
from integrations.llm.services import _budget_key, llm_token_budget
from mcp_tools.context import Principal
from mcp_tools.executor import execute
from smarteros.infra.redis import get_redis
from tenants.lifecycle import tenant_plan_set
from tenants.models import ApiKey
from tenants.scope import dangerously_unscoped
from tests.integrations.test_llm import _bot_reply_effect, connect_llm, reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback_llm_allowed(settings: Any) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def fresh(make_tenant: Any, saas: Any, connect: Any) -> Any:
    shop = make_tenant(f"llmp{secrets.token_hex(3)}")
    connect(shop.tenant, "whatsapp", saas.url)
    connect_llm(shop.tenant, saas, daily_token_budget=1000)
    get_redis().delete(_budget_key(shop.tenant, datetime.now(UTC)))  # Redis outlives test DBs
    return shop


def test_the_plans_budget_and_the_connections_lower_one(settings: Any, make_tenant: Any) -> None:
    tenant = make_tenant(f"llmp{secrets.token_hex(3)}").tenant
    settings.LLM_TOKENS_PER_DAY_BY_PLAN = {"free": 500, "pro": 0, "enterprise": 0}
    assert llm_token_budget(tenant=tenant, connection_budget=0).tokens == 500
    assert llm_token_budget(tenant=tenant, connection_budget=900).tokens == 500  # not raised
    lower = llm_token_budget(tenant=tenant, connection_budget=100)
    assert (lower.tokens, lower.set_by) == (100, "its llm connection")
    tenant.plan = "pro"
    assert llm_token_budget(tenant=tenant, connection_budget=0).tokens == 0  # no budget


def test_a_tenant_at_its_budget_gets_the_error_from_the_bot_and_the_tools(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    shop, other = fresh(make_tenant, saas, connect), fresh(make_tenant, saas, connect)
    tenant = tenant_plan_set(
        tenant=shop.tenant,
        actor="platform-admin",
        plan="free",
        rate_limit_per_minute=None,
        llm_tokens_per_day=20,
        reason="trial",
    )
    reply(tenant)  # 17 tokens
    reply(tenant)  # 34: spent
    with pytest.raises(LlmBudgetExhausted) as spent:
        reply(tenant)
    assert "(34/20 tokens, set by the platform for this tenant)" in str(spent.value)
    assert "renews at 00:00 UTC" in str(spent.value)

    # The bot's reply to an inbound message waits for the budget to renew, untried.
    requests_before = len(saas.state.llm.requests)
    effect = _bot_reply_effect(tenant, saas)
    assert effect.state == Effect.State.PENDING
    assert effect.last_error.startswith("llm_budget_exhausted:")
    assert len(saas.state.llm.requests) == requests_before

    # The spending tool, asked to answer that message, gets the budget error with its code.
    with dangerously_unscoped():
        key = ApiKey.objects.get(tenant=tenant)
    called = execute(
        "whatsapp_create_bot_response",
        {"phone": "+14155550123", "send": False},
        principal=Principal(tenant=tenant, api_key=key),
        surface="rest",
    )
    assert called.error is not None and called.error.code == "llm_budget_exhausted", called
    assert "set by the platform for this tenant" in called.error.message

    # Another tenant is not touched.
    assert reply(other.tenant).text

    # The console shows the use against the budget, to the tenant's admin as to the platform.
    admin = get_user_model().objects.create_superuser("budget-admin", password="budget-pass-1")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/tenants/{tenant.slug}/").content.decode()
    assert "34 of 20 tokens (170%)" in page
    assert "Budget spent" in page and "Set by the platform for this tenant" in page
