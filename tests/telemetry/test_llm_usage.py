"""Every LLM reply's token usage reaches ClickHouse (llm_usage) through the telemetry sink, once,
with its provider, model and tenant, and the charts show tokens per tenant."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import pytest

from integrations.llm.services import llm_reply
from integrations.services import integration_connect
from smarteros.infra.clickhouse import clickhouse_client
from telemetry.charts import chart_data
from telemetry.schema import clickhouse_migrate
from telemetry.sink import TelemetrySink
from tests.conftest import wait_for
from tests.fixtures.standins.llm import LLM_KEY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def loopback_llm_allowed(settings: Any) -> None:
    """The LLM stand-in listens on loopback, which an llm connection's base_url may not name
    unless the deployment allows it."""
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def usage_of(tenants: list[str]) -> list[tuple[Any, ...]]:
    client = clickhouse_client()
    try:
        return list(
            client.execute(
                "SELECT tenant, provider, model, origin, tokens_in, tokens_out FROM llm_usage "
                "WHERE tenant IN %(t)s ORDER BY tenant, time, event_id",
                {"t": tuple(tenants)},
            )
        )
    finally:
        client.disconnect()


def test_token_usage_is_recorded_per_tenant_and_charted(
    broker: Any, make_tenant: Any, saas: Any
) -> None:
    clickhouse_migrate()
    first = make_tenant(f"tok{secrets.token_hex(3)}").tenant
    second = make_tenant(f"tok{secrets.token_hex(3)}").tenant
    integration_connect(
        tenant=first,
        provider="llm",
        config={"base_url": saas.url, "model": "claude-test"},
        credentials={"api_key": LLM_KEY},
    )
    integration_connect(
        tenant=second,
        provider="llm",
        config={"provider": "openai_compatible", "base_url": f"{saas.url}/v1", "model": "gpt-x"},
        credentials={"api_key": LLM_KEY},
    )
    question = [{"role": "user", "content": "Where is my order?"}]  # 4 words; reply 7
    for tenant, times in ((first, 2), (second, 1)):
        for _ in range(times):
            llm_reply(
                tenant=tenant,
                system="Be brief.",
                messages=question,
                origin="whatsapp.bot_reply",
                trace_id="",
            )

    sink = TelemetrySink(batch_seconds=0.3, **{"group.id": f"sink-llm-{secrets.token_hex(4)}"})
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    slugs = [first.slug, second.slug]
    try:
        wait_for(lambda: len(usage_of(slugs)) == 3, timeout=60)
    finally:
        sink.stop()
        thread.join(15)
    assert sorted(usage_of(slugs)) == sorted(
        [
            (first.slug, "anthropic", "claude-test", "whatsapp.bot_reply", 6, 7),
            (first.slug, "anthropic", "claude-test", "whatsapp.bot_reply", 6, 7),
            (second.slug, "openai_compatible", "gpt-x", "whatsapp.bot_reply", 6, 7),
        ]
    )

    charts = chart_data(tenants=slugs, range_key="15m")
    assert charts["empty"] is False
    assert {
        (r["provider"], r["model"], r["tenant"], r["tokens_in"], r["tokens_out"])
        for r in charts["tokens"]
    } == {
        ("anthropic", "claude-test", first.slug, 12, 14),
        ("openai_compatible", "gpt-x", second.slug, 6, 7),
    }
    per_tenant = charts["tokens_per_tenant"]
    assert per_tenant["tenants"] == [first.slug, second.slug]  # biggest spender first
    axis, *series = per_tenant["series"]
    assert [sum(v or 0 for v in s) for s in series] == [26, 13]
    assert all(len(s) == len(axis) for s in series)
