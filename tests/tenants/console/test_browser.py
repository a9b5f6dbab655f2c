"""The console in a real headless Chromium against the ASGI app under uvicorn, with a real Celery
worker: provisioning progress arrives live, a failed step is retried, and each role walks its
flows. Screenshots land in artifacts/."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenants.models import ApiKey, Tenant
from tenants.scope import dangerously_unscoped
from tests.processes import ROOT
from tests.tenants.console.conftest import PASSWORD, World, calls_insert

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed"
    ),
]

ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextlib.contextmanager
def celery_worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the test's broker and database, stopped at the end."""
    log = ROOT / ".run" / "logs" / f"test-celery-{secrets.token_hex(3)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smarteros",
                "worker",
                "-P",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield worker
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads between
    # steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def signed_in(browser: Any, base: str, username: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.on("console", lambda message: print("browser:", message.text))
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def test_platform_admin_creates_and_provisions_live_with_a_retry(
    world: World, web_server: str, server_env: dict[str, str], browser: Any
) -> None:
    from smarteros.celery import app

    app.control.purge()  # nothing queued by earlier tests runs against this database
    slug = f"brow{secrets.token_hex(3)}"
    page = signed_in(browser, web_server, "platform")
    page.click("text=New tenant")
    page.fill("input[name=slug]", "Not A Slug")
    page.fill("input[name=name]", "Browser Shop")
    page.click("button:has-text('Create and provision')")
    assert "A tenant slug is 3-40 characters" in page.inner_text("#tenant-form")

    # The first worker cannot reach Vault: the second step fails, live.
    with celery_worker({**server_env, "VAULT_ADDR": "http://127.0.0.1:1"}):
        page.fill("input[name=slug]", slug)
        page.select_option("select[name=plan]", "pro")
        page.click("button:has-text('Create and provision')")
        page.wait_for_url(f"{web_server}/tenants/{slug}/provisioning/")
        page.wait_for_selector("#live:has-text('live')")
        page.wait_for_selector("#step-kafka_topics.step-done", timeout=90_000)
        page.wait_for_selector("#step-vault_key.step-failed", timeout=90_000)
    assert "Vault is unavailable" in page.inner_text("#step-vault_key")
    assert page.is_visible("#retry")
    page.screenshot(path=str(ARTIFACTS / "console-provision-failed.png"), full_page=True)

    with celery_worker(server_env):
        page.click("#retry")
        page.wait_for_selector("#step-first_api_key.step-done", timeout=90_000)
        page.wait_for_selector("#show-key", state="visible")
        assert page.inner_text("#outcome") == "Provisioned."
        page.click("#show-key")
        page.wait_for_selector("#first-key-secret")
    secret = page.inner_text("#first-key-secret")
    assert secret.startswith("sos_live_") and secret in page.inner_text("#desktop-snippet")
    page.screenshot(path=str(ARTIFACTS / "console-provisioned.png"), full_page=True)
    with dangerously_unscoped():
        tenant = Tenant.objects.get(slug=slug)
        assert tenant.status == "active" and tenant.plan == "pro"
        assert ApiKey.objects.filter(tenant=tenant).count() == 1

    page.goto(f"{web_server}/tenants/{slug}/")
    assert page.inner_text("#provisioning").count("done") == 3
    # The list filters in place as one types (htmx under the Content-Security-Policy).
    page.click("header >> text=Tenants")
    page.fill("#q", slug)
    page.wait_for_function(
        "(slug) => document.querySelectorAll('#tenants tbody tr').length === 1 "
        "&& document.querySelector('#tenants tbody tr').dataset.slug === slug",
        arg=slug,
    )
    assert f"q={slug}" in page.url
    calls_insert(world.acme.slug, ok=40, errors=3)
    calls_insert(world.acme.slug, ok=12, errors=0, operation="agent_create_session")
    page.goto(f"{web_server}/tenants/{world.acme.slug}/")
    assert "55 calls, 3 errors." in page.inner_text("#calls")
    page.screenshot(path=str(ARTIFACTS / "console-overview.png"), full_page=True)

    # Suspend with a reason, confirming with the slug; resume.
    page.goto(f"{web_server}/tenants/{world.acme.slug}/lifecycle/")
    page.fill("#form-suspend input[name=suspend-reason]", "chargeback")
    page.fill("#form-suspend input[name=suspend-confirm]", world.acme.slug)
    page.click("#form-suspend button")
    page.wait_for_selector("#form-resume")
    assert "suspended" in page.inner_text("h1")
    page.fill("#form-resume input[name=resume-reason]", "settled")
    page.click("#form-resume button")
    page.wait_for_selector("#form-suspend")


def test_tenant_admin_issues_and_revokes_a_key_and_connects_n8n(
    world: World, web_server: str, browser: Any
) -> None:
    page = signed_in(browser, web_server, "acme-admin")
    assert page.locator("#tenants tbody tr").count() == 1
    page.click(f"text={world.acme.slug}")
    page.click("nav.tabs >> text=API keys")
    assert page.locator("text=platform.admin").count() == 0
    page.click("#key-form button[type=submit]")  # no name, no scope: inline errors, in place
    page.wait_for_selector("#key-form .errorlist")
    assert "This field is required." in page.inner_text("#key-form")
    page.fill("#key-form input[name=name]", "browser-bot")
    page.check("#key-form input[value='tenant.read']")
    page.uncheck("#key-form input[value='*']")
    page.click("#key-form button[type=submit]")
    secret = page.inner_text("#new-key-secret")
    assert secret.startswith("sos_live_")
    page.screenshot(path=str(ARTIFACTS / "console-key-created.png"), full_page=True)
    page.reload()  # the form was posted by htmx: reloading does not post it again
    assert page.locator("#new-key-secret").count() == 0
    with dangerously_unscoped():
        assert ApiKey.objects.filter(tenant=world.acme, name="browser-bot").count() == 1
    prefix = secret[:15]
    page.click(f"tr[data-prefix='{prefix}'] button:has-text('Revoke')")
    page.click("#revoke-confirm button:has-text('Revoke key')")
    assert "revoked" in page.inner_text(f"tr[data-prefix='{prefix}']")
    with dangerously_unscoped():
        assert ApiKey.objects.get(prefix=prefix).revoked_at is not None

    page.click("nav.tabs >> text=Integrations")
    page.fill("#integration-n8n input[name=n8n-base_url]", "https://n8n.example.com")
    page.fill("#integration-n8n input[name=n8n-api_key]", "n8n-secret-value")
    page.click("#integration-n8n button[type=submit]")
    page.wait_for_selector("#integration-n8n:has-text('connected')")
    assert page.input_value("#integration-n8n input[name=n8n-api_key]") == ""
    assert "n8n-secret-value" not in page.content()


def test_viewer_reads_and_is_refused_changes(world: World, web_server: str, browser: Any) -> None:
    page = signed_in(browser, web_server, "acme-viewer")
    assert world.globex.slug not in page.inner_text("#tenants")
    page.goto(f"{web_server}/tenants/{world.acme.slug}/keys/")
    assert page.locator("#key-form").count() == 0
    assert page.locator("text=Revoke").count() == 0
    page.goto(f"{web_server}/tenants/{world.acme.slug}/lifecycle/")
    assert "read-only" in page.inner_text("main")
    response = page.goto(f"{web_server}/tenants/{world.globex.slug}/")
    assert response is not None and response.status == 403
    assert "among the ones you may see" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "console-viewer-refused.png"), full_page=True)
