"""An LLM answer without text is a failure saying why (its stop reason), never an empty reply
sent or a bot reply marked done."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from effects.models import Effect
from integrations.llm.errors import LlmEmptyReply
from integrations.llm.services import llm_reply
from integrations.models import WhatsAppMessage
from integrations.services import integration_connect
from integrations.whatsapp.services import whatsapp_bot_reply_record
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.fixtures.standins.llm import LLM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Is the blue mug in stock?"}]
THINKING_ONLY = [{"type": "thinking", "thinking": "Let me check the stock...", "signature": "x"}]


@pytest.fixture(autouse=True)
def loopback_llm_allowed(settings: Any) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def connect_llm(tenant: Any, saas: Any, provider: str) -> None:
    base_url = saas.url if provider == "anthropic" else f"{saas.url}/v1"
    integration_connect(
        tenant=tenant,
        provider="llm",
        config={"provider": provider, "base_url": base_url, "model": "claude-test"},
        credentials={"api_key": LLM_KEY},
    )


@pytest.mark.parametrize(
    ("provider", "answer", "expected"),
    [
        ("anthropic", (THINKING_ONLY, "max_tokens"), "used its whole budget of"),
        ("anthropic", ([], "refusal"), "refused to answer (refusal)"),
        ("anthropic", ([{"type": "text", "text": "  "}], "end_turn"), "stop reason end_turn"),
        ("openai_compatible", (None, "length"), "used its whole budget of"),
        ("openai_compatible", ("", "content_filter"), "refused to answer (content_filter)"),
    ],
)
def test_an_answer_without_text_is_a_failure_naming_its_stop_reason(
    make_tenant: Any, saas: Any, provider: str, answer: tuple[Any, str], expected: str
) -> None:
    tenant = make_tenant(f"llme{secrets.token_hex(3)}").tenant
    connect_llm(tenant, saas, provider)
    saas.state.llm.replies.append(answer)
    with pytest.raises(LlmEmptyReply) as raised:
        llm_reply(tenant=tenant, system="Be brief.", messages=HELLO, origin="test", trace_id="")
    assert raised.value.code == "llm_empty_reply"
    assert expected in raised.value.message


def test_a_bot_reply_the_model_left_empty_fails_and_sends_nothing(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    shop = make_tenant(f"llmb{secrets.token_hex(3)}").tenant
    connect(shop, "whatsapp", saas.url)
    connect_llm(shop, saas, "anthropic")
    saas.state.llm.replies.append((THINKING_ONLY, "max_tokens"))
    with tenant_scope(shop.pk):
        WhatsAppMessage.objects.create(
            tenant=shop,
            phone="+14155550123",
            direction=WhatsAppMessage.Direction.INBOUND,
            text="Is the blue mug in stock?",
            provider_message_id="wamid.in.empty",
        )
        recorded = whatsapp_bot_reply_record(
            tenant=shop, phone="+14155550123", answers="wamid.in.empty", trace_id=""
        )
    with dangerously_unscoped():  # performed after commit (eagerly, in this process)
        effect = Effect.objects.get(pk=recorded.pk)
    assert (effect.state, effect.attempts) == (Effect.State.FAILED, 1)
    assert effect.last_error.startswith("llm_empty_reply: Anthropic: the model used its whole")
    assert saas.state.applied_of("whatsapp") == []  # nothing sent to the customer
