"""LLM replies: Anthropic through its SDK or an OpenAI-compatible endpoint, chosen per tenant;
the providers' documented errors mapped to errors a caller can act on, and the bot's reply
effect retrying only what may pass, after the wait the provider asked for."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from effects.models import Effect
from integrations.llm.client import LlmRequest
from integrations.llm.errors import (
    LlmBudgetExhausted,
    LlmCredentialsRejected,
    LlmInvalidRequest,
    LlmOverloaded,
    LlmRateLimited,
)
from integrations.llm.services import (
    _budget_key,
    llm_client,
    llm_reply,
    llm_settings,
    llm_tokens_spent_today,
)
from integrations.models import WhatsAppMessage
from integrations.services import integration_connect
from smarteros.errors import NotConnected
from smarteros.infra.redis import get_redis
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.fixtures.standins.llm import LLM_KEY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback_llm_allowed(settings: Any) -> None:
    """The LLM stand-in listens on loopback, which an llm connection's base_url may not name
    unless the deployment allows it."""
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


HELLO = [{"role": "user", "content": "Is the blue mug in stock?"}]


def connect_llm(tenant: Any, saas: Any, provider: str = "anthropic", **config: Any) -> None:
    base_url = saas.url if provider == "anthropic" else f"{saas.url}/v1"
    integration_connect(
        tenant=tenant,
        provider="llm",
        config={"provider": provider, "base_url": base_url, "model": "claude-test", **config},
        credentials={"api_key": LLM_KEY},
    )


def reply(tenant: Any) -> Any:
    return llm_reply(tenant=tenant, system="Be brief.", messages=HELLO, origin="test", trace_id="")


def test_each_tenant_uses_its_own_provider_model_and_limits(make_tenant: Any, saas: Any) -> None:
    anthropic_shop = make_tenant(f"llma{secrets.token_hex(3)}").tenant
    openai_shop = make_tenant(f"llmo{secrets.token_hex(3)}").tenant
    connect_llm(anthropic_shop, saas, max_tokens=300)
    connect_llm(openai_shop, saas, "openai_compatible", model="gpt-test", max_tokens=200)

    first = reply(anthropic_shop)
    second = reply(openai_shop)

    assert (first.provider, first.model, first.text) == (
        "anthropic",
        "claude-test",
        "Thanks! You said: Is the blue mug in stock?",
    )
    assert (first.tokens_in, first.tokens_out) == (2 + 6, 9)  # system + message words; reply
    assert (second.provider, second.model) == ("openai_compatible", "gpt-test")
    assert (second.tokens_in, second.tokens_out) == (2 + 6, 9)
    (path_a, headers_a, body_a), (path_o, headers_o, body_o) = saas.state.llm.requests
    # The SDK speaks the Messages API: key (SDK 2.x: as a bearer token) and version headers,
    # the system prompt apart from the messages.
    assert path_a == "/v1/messages"
    assert headers_a["Authorization"] == f"Bearer {LLM_KEY}" and headers_a["anthropic-version"]
    assert body_a == {
        "model": "claude-test",
        "max_tokens": 300,
        "system": "Be brief.",
        "messages": HELLO,
    }
    assert path_o == "/v1/chat/completions"
    assert headers_o["Authorization"] == f"Bearer {LLM_KEY}"
    assert body_o == {
        "model": "gpt-test",
        "max_tokens": 200,
        "messages": [{"role": "system", "content": "Be brief."}, *HELLO],
    }


def test_platform_defaults_fill_what_the_tenant_left_empty(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.LLM_MODEL, settings.LLM_MAX_TOKENS = "claude-platform", 64
    shop = make_tenant(f"llmd{secrets.token_hex(3)}").tenant
    integration_connect(
        tenant=shop, provider="llm", config={"base_url": saas.url}, credentials={"api_key": "k"}
    )
    with tenant_scope(shop.pk):
        chosen = llm_settings(tenant=shop)
    assert (chosen.provider, chosen.model, chosen.max_tokens, chosen.daily_token_budget) == (
        "anthropic",
        "claude-platform",
        64,
        0,
    )


def test_a_tenant_without_an_llm_key_is_told_how_to_connect_one(make_tenant: Any) -> None:
    shop = make_tenant(f"llmn{secrets.token_hex(3)}").tenant
    with pytest.raises(NotConnected, match="llm connection"):
        reply(shop)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"provider": "gemini"}, "provider"),
        ({"provider": "openai_compatible"}, "base_url"),
        ({"base_url": "ftp://llm.example"}, "base_url"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"daily_token_budget": -1}, "daily_token_budget"),
        ({"base_url": "http://169.254.169.254/v1"}, "base_url is refused"),
        ({"base_url": "http://10.1.2.3:8000/v1"}, "base_url is refused"),
    ],
)
def test_llm_settings_that_cannot_work_are_refused_naming_the_field(
    make_tenant: Any, config: dict[str, Any], field: str, settings: Any
) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = []
    shop = make_tenant(f"llmv{secrets.token_hex(3)}").tenant
    with pytest.raises(ValueError, match=field):
        integration_connect(
            tenant=shop, provider="llm", config=config, credentials={"api_key": "k"}
        )
    with dangerously_unscoped():
        assert not shop.integrations.exists()


@pytest.mark.parametrize("provider", ["anthropic", "openai_compatible"])
def test_provider_errors_map_to_what_the_caller_can_do(
    make_tenant: Any, saas: Any, provider: str
) -> None:
    shop = make_tenant(f"llme{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas, provider)
    overloaded = 529 if provider == "anthropic" else 503

    saas.state.llm.fail_next(429, retry_after="17")
    with pytest.raises(LlmRateLimited) as limited:
        reply(shop)
    assert limited.value.retry_after == 17 and "retry after 17s" in limited.value.message

    saas.state.llm.fail_next(overloaded)
    with pytest.raises(LlmOverloaded, match="overloaded"):
        reply(shop)

    saas.state.llm.fail_next(400)
    with pytest.raises(LlmInvalidRequest, match="HTTP 400"):
        reply(shop)

    connect_llm(shop, saas, provider)
    with tenant_scope(shop.pk):
        wrong = llm_settings(tenant=shop).__class__(
            **{**llm_settings(tenant=shop).__dict__, "api_key": "sk-ant-revoked"}
        )
    with pytest.raises(LlmCredentialsRejected, match="API key is refused"):
        llm_client(wrong).reply(LlmRequest(system="s", messages=HELLO, max_tokens=5))


def test_the_daily_token_budget_stops_replies_until_midnight(make_tenant: Any, saas: Any) -> None:
    shop = make_tenant(f"llmb{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas, daily_token_budget=20)
    # Ids restart with each test database; Redis outlives it.
    get_redis().delete(_budget_key(shop, datetime.now(UTC)))
    reply(shop)  # 17 tokens: within the budget
    reply(shop)  # 34: the budget is spent by this one
    with pytest.raises(LlmBudgetExhausted) as spent:
        reply(shop)
    assert 0 < spent.value.retry_after <= 86400
    assert len(saas.state.llm.requests) == 2  # the third never reached the provider
    assert llm_tokens_spent_today(tenant=shop) == 34


def _bot_reply_effect(shop: Any, saas: Any) -> Effect:
    from integrations.whatsapp.services import whatsapp_bot_reply_record

    with tenant_scope(shop.pk):
        WhatsAppMessage.objects.create(
            tenant=shop,
            phone="+14155550123",
            direction=WhatsAppMessage.Direction.INBOUND,
            text="Is the blue mug in stock?",
            provider_message_id="wamid.in.llm",
        )
        effect = whatsapp_bot_reply_record(
            tenant=shop, phone="+14155550123", answers="wamid.in.llm", trace_id=""
        )
    with dangerously_unscoped():  # performed after commit (eagerly, in this process)
        return Effect.objects.get(pk=effect.pk)


def test_a_rate_limited_bot_reply_waits_as_long_as_the_provider_said(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    shop = make_tenant(f"llmr{secrets.token_hex(3)}").tenant
    connect(shop, "whatsapp", saas.url)
    connect_llm(shop, saas)
    saas.state.llm.fail_next(429, retry_after="120")
    effect = _bot_reply_effect(shop, saas)
    assert effect.state == Effect.State.PENDING and effect.attempts == 1
    assert effect.last_error.startswith("llm_rate_limited:")
    # EFFECT_RETRY_DELAYS starts at 2 s; the provider's 120 s wins.
    assert effect.not_before > timezone.now() + timedelta(seconds=100)


def test_a_bot_reply_with_a_refused_key_fails_at_once_for_an_operator(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    shop = make_tenant(f"llmk{secrets.token_hex(3)}").tenant
    connect(shop, "whatsapp", saas.url)
    integration_connect(
        tenant=shop,
        provider="llm",
        config={"base_url": saas.url, "model": "claude-test"},
        credentials={"api_key": "sk-ant-revoked"},
    )
    effect = _bot_reply_effect(shop, saas)
    assert effect.state == Effect.State.FAILED and effect.attempts == 1
    assert effect.last_error.startswith("llm_credentials_rejected:")


def test_an_overloaded_provider_is_retried_and_the_reply_then_sent(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    shop = make_tenant(f"llmo{secrets.token_hex(3)}").tenant
    connect(shop, "whatsapp", saas.url)
    connect_llm(shop, saas)
    saas.state.llm.fail_next(529)
    effect = _bot_reply_effect(shop, saas)
    assert effect.state == Effect.State.PENDING
    assert effect.last_error.startswith("llm_overloaded:")
    from effects.services import effect_perform

    with dangerously_unscoped():
        Effect.objects.filter(pk=effect.pk).update(not_before=timezone.now())
    effect_perform(effect_id=effect.pk, tenant_id=shop.pk)
    with dangerously_unscoped():
        effect.refresh_from_db()
    assert effect.state == Effect.State.DONE and effect.attempts == 2
    assert (effect.result or {})["text"] == "Thanks! You said: Is the blue mug in stock?"


# The stand-in itself refuses what the providers refuse (so a client that sends less fails).


def test_the_anthropic_stand_in_validates_like_the_messages_api(saas: Any) -> None:
    url = f"{saas.url}/v1/messages"
    good = {"model": "claude-test", "max_tokens": 10, "messages": HELLO}
    headers = {"x-api-key": LLM_KEY, "anthropic-version": "2023-06-01"}

    def post(body: Any, **header: str) -> httpx.Response:
        return httpx.post(url, json=body, headers={**headers, **header})

    assert post(good).status_code == 200
    bad_key = post(good, **{"x-api-key": "nope"})
    assert bad_key.status_code == 401
    assert bad_key.json()["error"]["type"] == "authentication_error"
    assert bad_key.json()["type"] == "error" and bad_key.json()["request_id"]
    no_version = httpx.post(url, json=good, headers={"x-api-key": LLM_KEY})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.text
    bearer = {"Authorization": f"Bearer {LLM_KEY}", "anthropic-version": "2023-06-01"}
    assert httpx.post(url, json=good, headers=bearer).status_code == 200
    for missing in ("model", "max_tokens", "messages"):
        answer = post({k: v for k, v in good.items() if k != missing})
        assert answer.status_code == 400, missing
        assert answer.json()["error"] == {
            **answer.json()["error"],
            "type": "invalid_request_error",
        }
        assert missing in answer.json()["error"]["message"]
    saas.state.llm.fail_next(429, retry_after="3")
    limited = post(good)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    saas.state.llm.fail_next(529)
    assert post(good).json()["error"]["type"] == "overloaded_error"


def test_the_openai_stand_in_validates_chat_completions(saas: Any) -> None:
    url = f"{saas.url}/v1/chat/completions"
    good = {"model": "gpt-test", "messages": HELLO}
    auth = {"Authorization": f"Bearer {LLM_KEY}"}
    ok = httpx.post(url, json=good, headers=auth)
    assert ok.status_code == 200 and ok.json()["object"] == "chat.completion"
    assert ok.json()["choices"][0]["message"]["role"] == "assistant"
    assert set(ok.json()["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    bad_key = httpx.post(url, json=good, headers={"Authorization": "Bearer nope"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["code"] == "invalid_api_key"
    no_model = httpx.post(url, json={"messages": HELLO}, headers=auth)
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    bad_role = httpx.post(
        url, json={**good, "messages": [{"role": "bot", "content": "x"}]}, headers=auth
    )
    assert bad_role.status_code == 400 and bad_role.json()["error"]["param"] == "messages"
    saas.state.llm.fail_next(429, retry_after="9")
    limited = httpx.post(url, json=good, headers=auth)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "9"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_the_admin_refuses_llm_settings_that_cannot_work_even_without_new_credentials(
    make_tenant: Any, saas: Any
) -> None:
    from integrations.admin import IntegrationConnectionForm
    from integrations.models import IntegrationConnection

    shop = make_tenant(f"llmf{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas)
    with dangerously_unscoped():
        connection = IntegrationConnection.objects.get(tenant=shop, provider="llm")
        form = IntegrationConnectionForm(
            data={"tenant": shop.pk, "provider": "llm", "config": '{"provider": "gemini"}'},
            instance=connection,
        )
        assert not form.is_valid()
    assert "provider must be one of" in form.errors["config"][0]


def test_the_bot_answers_its_message_when_a_reply_stored_before_it_carries_a_later_time(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    """Found by the soak: an operator's message stored just before the customer's, by another
    process whose clock read a moment later, was taken for the conversation's last message and
    the bot's reply failed with "no customer message is waiting for a reply"."""
    shop = make_tenant(f"llmc{secrets.token_hex(3)}").tenant
    connect(shop, "whatsapp", saas.url)
    connect_llm(shop, saas)
    with tenant_scope(shop.pk):
        sent = WhatsAppMessage.objects.create(
            tenant=shop,
            phone="+14155550123",
            direction=WhatsAppMessage.Direction.OUTBOUND,
            text="Your order has shipped.",
            provider_message_id="wamid.out.first",
        )
        WhatsAppMessage.objects.filter(pk=sent.pk).update(
            created_at=timezone.now() + timedelta(milliseconds=50)
        )
    effect = _bot_reply_effect(shop, saas)
    assert effect.state == Effect.State.DONE, effect.last_error


# The reply budget is sized for the model (integrations/llm/models.py): its default when the
# connection sets none, and the model's documented output limit as the most it may set.


@pytest.mark.parametrize(
    ("model", "budget", "limit"),
    [
        ("claude-sonnet-5-5", 16_000, 128_000),  # adaptive thinking on by default
        ("claude-opus-5-5", 16_000, 128_000),
        ("anthropic/claude-haiku-5.5", 16_000, 128_000),  # a gateway's spelling
        ("claude-opus-4-6", 16_000, 128_000),
        ("claude-haiku-4-5-20251001", 4_096, 64_000),
        ("claude-sonnet-4-5@20250929", 4_096, 64_000),
        ("claude-opus-4-1-20250805", 4_096, 32_000),
        ("gpt-5.5", 25_000, 128_000),  # reasons by default
        ("gpt-5.1-chat-latest", 4_096, 16_384),
        ("o4-mini", 25_000, 100_000),
        ("gpt-4.1-mini", 4_096, 32_768),
        ("gpt-4o", 4_096, 16_384),
    ],
)
def test_the_reply_budget_and_its_limit_follow_the_model(
    make_tenant: Any, saas: Any, model: str, budget: int, limit: int
) -> None:
    shop = make_tenant(f"llmm{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas, model=model)
    with tenant_scope(shop.pk):
        assert llm_settings(tenant=shop).max_tokens == budget

    connect_llm(shop, saas, model=model, max_tokens=limit)  # the documented limit is allowed
    with pytest.raises(ValueError) as refused:
        connect_llm(shop, saas, model=model, max_tokens=limit + 1)
    assert str(refused.value) == (
        f"max_tokens must be between 1 and {limit}, the most output tokens the model {model} "
        "is documented to write"
    )
    with dangerously_unscoped():
        assert shop.integrations.get(provider="llm").config["max_tokens"] == limit


def test_a_model_the_table_does_not_know_keeps_the_platform_budget_and_limit(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.LLM_MAX_TOKENS = 700
    shop = make_tenant(f"llmu{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas, "openai_compatible", model="llama3.1:8b")
    with tenant_scope(shop.pk):
        assert llm_settings(tenant=shop).max_tokens == 700
    reply(shop)
    assert saas.state.llm.requests[-1][2]["max_tokens"] == 700
    connect_llm(shop, saas, "openai_compatible", model="llama3.1:8b", max_tokens=64_000)
    with pytest.raises(ValueError, match=r"^max_tokens must be between 1 and 64000$"):
        connect_llm(shop, saas, "openai_compatible", model="llama3.1:8b", max_tokens=64_001)


def test_the_platform_model_sizes_the_budget_of_a_connection_that_names_none(
    make_tenant: Any, saas: Any, settings: Any
) -> None:
    settings.LLM_MODEL = "claude-haiku-4-5"
    shop = make_tenant(f"llmp{secrets.token_hex(3)}").tenant
    with pytest.raises(ValueError, match=r"between 1 and 64000, .* claude-haiku-4-5 "):
        integration_connect(
            tenant=shop,
            provider="llm",
            config={"base_url": saas.url, "max_tokens": 100_000},
            credentials={"api_key": LLM_KEY},
        )
    integration_connect(
        tenant=shop,
        provider="llm",
        config={"base_url": saas.url, "max_tokens": 60_000},
        credentials={"api_key": LLM_KEY},
    )
    # The platform then moves to a model that writes less: the saved budget is capped to it.
    settings.LLM_MODEL = "claude-opus-4-1"
    with tenant_scope(shop.pk):
        assert llm_settings(tenant=shop).max_tokens == 32_000


def test_a_sonnet_5_reply_asks_for_room_to_think_before_it_writes(
    make_tenant: Any, saas: Any
) -> None:
    shop = make_tenant(f"llms{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas, model="claude-sonnet-5-5")
    assert reply(shop).text == "Thanks! You said: Is the blue mug in stock?"
    assert saas.state.llm.requests[-1][2]["max_tokens"] == 16_000


def test_an_openai_reasoning_model_gets_its_budget_as_max_completion_tokens(
    make_tenant: Any, saas: Any
) -> None:
    shop = make_tenant(f"llmr{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas, "openai_compatible", model="gpt-5.5")
    assert reply(shop).text == "Thanks! You said: Is the blue mug in stock?"
    body = saas.state.llm.requests[-1][2]
    assert body["max_completion_tokens"] == 25_000 and "max_tokens" not in body
    # The stand-in refuses the older field for it, as OpenAI does.
    refused = httpx.post(
        f"{saas.url}/v1/chat/completions",
        json={"model": "gpt-5.5", "max_tokens": 10, "messages": HELLO},
        headers={"Authorization": f"Bearer {LLM_KEY}"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unsupported_parameter"


def test_the_admin_refuses_a_max_tokens_above_the_models_limit(make_tenant: Any, saas: Any) -> None:
    from integrations.admin import IntegrationConnectionForm
    from integrations.models import IntegrationConnection

    shop = make_tenant(f"llmg{secrets.token_hex(3)}").tenant
    connect_llm(shop, saas)
    with dangerously_unscoped():
        connection = IntegrationConnection.objects.get(tenant=shop, provider="llm")
        form = IntegrationConnectionForm(
            data={
                "tenant": shop.pk,
                "provider": "llm",
                "config": '{"model": "gpt-4o", "max_tokens": 20000}',
            },
            instance=connection,
        )
        assert not form.is_valid()
    assert "max_tokens must be between 1 and 16384" in form.errors["config"][0]
