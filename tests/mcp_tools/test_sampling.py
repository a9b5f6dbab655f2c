"""whatsapp_create_bot_response with client_sampling: an MCP client that offers sampling writes
the reply with its own model (sampling/createMessage); one that does not, or REST, gets the
tenant's LLM."""

from __future__ import annotations

import json
import secrets
from typing import Any

import anyio
import mcp_types as types
import pytest

from integrations.services import integration_connect
from integrations.whatsapp.services import DEFAULT_BOT_PROMPT
from tests.fixtures.standins.llm import LLM_KEY
from tests.mcp_tools.clients import http_client, stdio_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback_llm_allowed(settings: Any) -> None:
    """The LLM stand-in listens on loopback, which an llm connection's base_url may not name
    unless the deployment allows it."""
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


PHONE = "+14155550123"


def shop_with_a_waiting_customer(make_tenant: Any, connect: Any, saas: Any) -> Any:
    tk = make_tenant(f"samp{secrets.token_hex(3)}")
    connect(tk.tenant, "whatsapp", saas.url)
    integration_connect(
        tenant=tk.tenant,
        provider="llm",
        config={"base_url": saas.url, "model": "claude-tenant"},
        credentials={"api_key": LLM_KEY},
    )
    return tk


def run_calls(
    env: dict[str, str], key: str, sampling_callback: Any, *, http_url: str = ""
) -> dict[str, Any]:
    async def calls() -> dict[str, Any]:
        client_for = (
            http_client(http_url, key, sampling_callback=sampling_callback)
            if http_url
            else stdio_client(env, key, sampling_callback=sampling_callback)
        )
        async with client_for as client:
            await client.call_tool(
                "whatsapp_process_inbound",
                {"from_phone": PHONE, "text": "Do you ship to Lyon?", "message_id": "wamid.s.1"},
            )
            result = await client.call_tool(
                "whatsapp_create_bot_response",
                {"phone": PHONE, "client_sampling": True, "send": False},
            )
            assert not result.is_error, result.content
            return json.loads(result.content[0].text)  # type: ignore[union-attr]

    return anyio.run(calls)


def sampling_client(asked: list[types.CreateMessageRequestParams]) -> Any:
    async def sampling(
        context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="Yes, we ship to Lyon in 2 days."),
            model="client-model-1",
            stop_reason="endTurn",
        )

    return sampling


def test_a_client_that_samples_writes_the_reply_with_its_own_model(
    make_tenant: Any, connect: Any, saas: Any, server_env: dict[str, str]
) -> None:
    tk = shop_with_a_waiting_customer(make_tenant, connect, saas)
    asked: list[types.CreateMessageRequestParams] = []
    out = run_calls(server_env, tk.key, sampling_client(asked))
    assert out["reply"] == "Yes, we ship to Lyon in 2 days."
    assert (out["written_by"], out["model"]) == ("mcp_client", "client-model-1")
    assert (out["tokens_in"], out["tokens_out"], out["sent"]) == (0, 0, False)
    # The client was given the conversation and the bot's prompt; the tenant's LLM was not asked.
    assert len(asked) == 1 and asked[0].system_prompt == DEFAULT_BOT_PROMPT
    assert [(m.role, m.content.text) for m in asked[0].messages] == [  # type: ignore[union-attr]
        ("user", "Do you ship to Lyon?")
    ]
    assert asked[0].max_tokens > 0
    assert saas.state.llm.requests == []


def test_a_client_without_sampling_gets_the_tenants_llm(
    make_tenant: Any, connect: Any, saas: Any, server_env: dict[str, str]
) -> None:
    tk = shop_with_a_waiting_customer(make_tenant, connect, saas)
    out = run_calls(server_env, tk.key, None)
    assert out["reply"] == "Thanks! You said: Do you ship to Lyon?"
    assert (out["written_by"], out["model"]) == ("tenant_llm", "claude-tenant")
    assert out["tokens_out"] == 8  # words of the stand-in's reply
    assert [path for path, _, _ in saas.state.llm.requests] == ["/v1/messages"]


def test_over_stateless_http_the_tenants_llm_answers_even_a_sampling_client(
    make_tenant: Any, connect: Any, saas: Any, web_server: str
) -> None:
    # /mcp over HTTP keeps no session: no server-to-client request can reach the client.
    tk = shop_with_a_waiting_customer(make_tenant, connect, saas)
    asked: list[types.CreateMessageRequestParams] = []
    out = run_calls({}, tk.key, sampling_client(asked), http_url=web_server)
    assert (out["written_by"], out["model"]) == ("tenant_llm", "claude-tenant")
    assert asked == []
