"""The topic viewer in a real headless Chromium against uvicorn serving the ASGI app, a broker of
the module's own and the real Redis channel layer."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smarteros.events import outbox
from smarteros.events.catalog import platform_topics
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import forget_producers
from tests.processes import ROOT, asgi_server, kafka_broker
from tests.telemetry.topics.conftest import envelope, produce

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(),
        reason="needs Debian's /usr/bin/chromium (installed by make test's set-up)",
    ),
]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
TOPIC = "acme.shopify.webhooks"
BUFFER = 20


@pytest.fixture(scope="module")
def viewer_server(server_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """uvicorn on a broker of its own, with a small socket buffer so missed counts show fast."""
    with kafka_broker() as broker:
        bootstrap = f"127.0.0.1:{broker.port}"
        server = asgi_server(
            env={
                **server_env,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "TOPICS_SOCKET_BUFFER": str(BUFFER),
            }
        )
        try:
            yield server.url, bootstrap
        finally:
            server.stop()


@pytest.fixture
def site(viewer_server: tuple[str, str], settings: Any, make_tenant: Any) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from smarteros.events.catalog import tenant_topics
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    base, bootstrap = viewer_server
    settings.KAFKA_BOOTSTRAP_SERVERS = bootstrap
    settings.KAFKA_CONSUMER_GROUP_PREFIX = f"test{secrets.token_hex(3)}"
    forget_producers()
    outbox._known_topics.clear()
    slug = f"b{secrets.token_hex(3)}"
    tenant = make_tenant(slug).tenant
    topics_sync(platform_topics() + tenant_topics(slug))
    User = get_user_model()
    cookies = {}
    for role in ("viewer", "admin"):
        user = User.objects.create_user(f"{slug}-{role}", password=f"pw-{slug}-{role}")
        with dangerously_unscoped():
            Membership.objects.create(user=user, tenant=tenant, role=role)
        client = Client()
        client.force_login(user)
        cookies[role] = client.cookies["sessionid"].value

    class Site:
        pass

    s = Site()
    s.base, s.slug, s.topic, s.cookies = base, slug, f"{slug}.shopify.webhooks", cookies  # type: ignore[attr-defined]
    yield s
    forget_producers()


@pytest.fixture
def browser(site: Any) -> Iterator[Any]:
    """Chromium; after `site`, because Playwright's sync API runs an event loop in this thread
    and Django refuses database work beside one."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Any, site: Any, role: str, query: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies([{"name": "sessionid", "value": site.cookies[role], "url": site.base}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(f"{site.base}/topics/view/?{query}")
    page.errors = errors
    return page


def rows(page: Any) -> list[str]:
    return page.locator("#messages tbody tr").all_inner_texts()


def test_live_message_shows_within_two_seconds_and_cel_narrows(browser: Any, site: Any) -> None:
    page = open_page(
        browser, site, "viewer", f"topic={site.topic}&mode=live&cel=value.data.total+%3E+100"
    )
    page.wait_for_selector("#status:has-text('Live: waiting')", timeout=10000)
    produce(
        site.topic, envelope("shopify.webhook.received", {"total": 50, "n": "small"}, site.slug)
    )
    produced = time.monotonic()
    produce(site.topic, envelope("shopify.webhook.received", {"total": 150, "n": "big"}, site.slug))
    page.wait_for_selector("#messages tbody tr:has-text('big')", timeout=2000)
    assert time.monotonic() - produced < 2.0
    page.wait_for_timeout(500)
    assert len(rows(page)) == 1 and "small" not in rows(page)[0]
    # The preview shows the event's type and data, not its envelope id; newest first.
    assert "shopify.webhook.received" in rows(page)[0] and '"id"' not in rows(page)[0]
    produce(
        site.topic, envelope("shopify.webhook.received", {"total": 151, "n": "later"}, site.slug)
    )
    page.wait_for_selector("#messages tbody tr:has-text('later')", timeout=5000)
    assert "later" in rows(page)[0] and "big" in rows(page)[1]
    assert page.locator("#missed.zero").count() == 1  # "missed: 0" is not an alarm
    page.screenshot(path=str(ARTIFACTS / "topics-live.png"), full_page=True)
    assert page.errors == []


def test_seek_by_timestamp_and_secret_masked(browser: Any, site: Any) -> None:
    base = 1_800_000_000_000
    for i in range(6):
        produce(
            site.topic,
            {"n": i, "note": f"key sos_live_secretsecret{i}", "access_token": "plaintext-token"},
            partition=0,
            timestamp=base + i * 60_000,
        )
    page = open_page(browser, site, "viewer", f"topic={site.topic}")
    page.fill("input[name=start]", "timestamp:2027-01-15T08:03:00Z")
    page.fill("input[name=limit]", "2")
    page.click("#viewer-form button[type=submit]")
    page.wait_for_selector("#status:has-text('scanned')", timeout=10000)
    assert "start=timestamp%3A2027-01-15T08%3A03%3A00Z" in page.url  # the link keeps the view
    shown = rows(page)
    assert len(shown) == 2 and '"n":3' in shown[0] and '"n":4' in shown[1]
    text = page.inner_text("#messages")
    assert "sos_live_secret" not in text and "plaintext-token" not in text and "••••••" in text
    page.locator("#messages tbody tr").first.click()
    page.wait_for_selector("#detail h2:has-text('Message 0/3')", timeout=10000)
    assert "plaintext-token" not in page.inner_text("#detail")
    page.click("#detail-close")
    assert page.locator("#detail").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "topics-seek.png"), full_page=True)
    newest = open_page(browser, site, "viewer", f"topic={site.topic}&start=newest&limit=2")
    newest.wait_for_selector("#more:has-text('Load older')", timeout=10000)
    assert [r[r.index('"n"') : r.index('"n"') + 5] for r in rows(newest)] == ['"n":4', '"n":5']
    newest.click("#more")
    # A locator, not wait_for_function: the console's CSP forbids the eval that one needs.
    newest.locator("#messages tbody tr").nth(3).wait_for(timeout=10000)
    assert [r[r.index('"n"') + 4] for r in rows(newest)] == ["2", "3", "4", "5"]


def test_paused_client_shows_its_missed_count(browser: Any, site: Any) -> None:
    page = open_page(browser, site, "viewer", f"topic={site.topic}&mode=live")
    page.wait_for_selector("#status:has-text('Live: waiting')", timeout=10000)
    page.click("#pause")
    page.wait_for_selector("#status:has-text('Paused')")
    for i in range(BUFFER + 12):
        produce(site.topic, {"n": i}, partition=0)
    page.wait_for_timeout(1500)
    page.click("#pause")
    page.wait_for_selector("#missed b:has-text('12')", timeout=5000)
    assert len(rows(page)) == BUFFER
    page.screenshot(path=str(ARTIFACTS / "topics-missed.png"), full_page=True)


def test_admin_replays_a_dead_letter(browser: Any, site: Any) -> None:
    dlq = f"{site.topic}.dlq"
    produce(
        dlq,
        {"n": "dead"},
        headers=[("dlq.reason", b"ValueError: no total"), ("dlq.topic", site.topic.encode())],
    )
    page = open_page(browser, site, "admin", f"topic={dlq}&start=oldest")
    page.wait_for_selector("#messages tbody tr", timeout=10000)
    page.locator("#messages tbody tr").first.click()
    page.wait_for_selector("#detail .dlq-reason:has-text('ValueError: no total')", timeout=10000)
    page.once("dialog", lambda dialog: dialog.accept())  # the replay asks for confirmation
    page.click("#replay")
    page.wait_for_selector("#replay-result:has-text('Replayed to')", timeout=10000)
    page.locator("#messages tbody tr").first.click()
    page.wait_for_selector("#replayed-mark", timeout=10000)  # marked as replayed, offered again
    page.screenshot(path=str(ARTIFACTS / "topics-replay.png"), full_page=True)
    live = open_page(browser, site, "viewer", f"topic={site.topic}&start=oldest")
    live.wait_for_selector("#messages tbody tr:has-text('dead')", timeout=10000)
