"""The operators' telemetry page, in a real headless Chromium: charts drawn from real data."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from telemetry.counter import TopicCounter
from telemetry.sink import TelemetrySink
from tests.conftest import wait_for
from tests.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"


def topic_messages(slug: str) -> int:
    from telemetry.queries import TenantQuery

    query = TenantQuery([slug], 3600, table="topic_messages", time_column="minute")
    return int(query.run("sum(messages)")[0][0] or 0)


def telemetry_rows(slug: str) -> int:
    from telemetry.queries import TenantQuery

    return int(TenantQuery([slug], 3600).run("count()")[0][0])


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is installed by make test's set-up"
)
def test_operator_sees_charts_drawn_with_data(web_server: str, make_tenant: Any) -> None:
    from playwright.sync_api import sync_playwright

    tk = make_tenant(f"chart{secrets.token_hex(3)}")
    get_user_model().objects.create_superuser(
        "chart-operator", "ops@example.com", "chart-operator-pw"
    )
    headers = {"Authorization": f"Bearer {tk.key}"}
    for _ in range(6):
        httpx.post(f"{web_server}/api/v1/tenant/get_tenant", json={}, headers=headers)
        httpx.post(
            f"{web_server}/api/v1/agent/create_session", json={"label": "chart"}, headers=headers
        )
    httpx.post(f"{web_server}/api/v1/tenant/update_tenant", json={"plan": "gold"}, headers=headers)
    sink = TelemetrySink(batch_seconds=0.5, **{"group.id": f"sink-console-{secrets.token_hex(4)}"})
    counter = TopicCounter(
        batch_seconds=0.5, **{"group.id": f"counter-console-{secrets.token_hex(4)}"}
    )
    threads = [threading.Thread(target=w.run, daemon=True) for w in (sink, counter)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: telemetry_rows(tk.tenant.slug) >= 13, timeout=120)
        wait_for(lambda: topic_messages(tk.tenant.slug) >= 13, timeout=120)
    finally:
        for worker in (sink, counter):
            worker.stop()
        for thread in threads:
            thread.join(30)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"{web_server}/login/")
            page.fill("input[name=username]", "chart-operator")
            page.fill("input[name=password]", "chart-operator-pw")
            page.click("button[type=submit]")
            page.goto(f"{web_server}/telemetry/")
            page.select_option("select[name=tenant]", tk.tenant.slug)
            page.wait_for_function(
                "() => window.smarterosCharts && window.smarterosCharts['chart-latency'] "
                "&& window.smarterosCharts['chart-volume'] && window.smarterosCharts['chart-topics']",
                timeout=30000,
            )
            drawn = page.evaluate("""() => {
                const c = window.smarterosCharts;
                const points = (u) => u.data.slice(1).map((s) => s.filter((v) => v !== null).length);
                return {latency: points(c['chart-latency']), volume: points(c['chart-volume']),
                        topics: c['chart-topics'] ? points(c['chart-topics']) : [],
                        series: c['chart-latency'].series.slice(1).map((s) => s.label),
                        canvases: document.querySelectorAll('#chart-latency canvas, #chart-volume canvas').length};
            }""")
            tools = page.inner_text("#table-tools")
            errors = page.inner_text("#table-errors")
            page.screenshot(path=str(ARTIFACTS / "telemetry.png"), full_page=True)
        finally:
            browser.close()
    assert drawn["canvases"] == 2
    assert set(drawn["series"]) >= {"tenant_get_tenant", "agent_create_session"}
    assert sum(drawn["latency"]) >= 2 and sum(drawn["volume"]) >= 1 and sum(drawn["topics"]) >= 1
    assert "tenant_get_tenant" in tools and "invalid_input" in errors


def test_charts_say_when_the_store_is_down_or_the_range_is_empty(
    settings: Any, make_tenant: Any
) -> None:
    get_user_model().objects.create_superuser("ops2", "ops2@example.com", "ops2-password-1")
    tk = make_tenant(f"quiet{secrets.token_hex(3)}")
    client = Client()
    assert client.login(username="ops2", password="ops2-password-1")
    empty = client.get("/telemetry/data.json", {"range": "15m", "tenant": tk.tenant.slug}).json()
    assert empty["empty"] is True and empty["tools"] == []
    assert client.get("/telemetry/data.json", {"range": "2y"}).status_code == 400
    settings.CLICKHOUSE_READ_URL = "clickhouse://default@127.0.0.1:1/smarteros"
    down = client.get("/telemetry/data.json", {"range": "1h"})
    assert down.status_code == 503 and down.json()["message"] == "telemetry store unavailable"


def test_operators_only_query_their_tenants(make_tenant: Any) -> None:
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    mine, other = (
        make_tenant(f"mine{secrets.token_hex(3)}"),
        make_tenant(f"other{secrets.token_hex(3)}"),
    )
    user = get_user_model().objects.create_user("viewer3", password="viewer3-password-1")
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=mine.tenant, role="viewer")
    client = Client()
    assert client.login(username="viewer3", password="viewer3-password-1")
    assert client.get("/telemetry/data.json", {"tenant": other.tenant.slug}).status_code == 404
    assert client.get("/telemetry/data.json").json()["tenants"] == [mine.tenant.slug]
