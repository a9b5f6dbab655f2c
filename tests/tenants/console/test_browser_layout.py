"""Console pages hold their width for a long tenant name, on a desktop and on a phone, and the
people and health pages work in a real browser. Screenshots land in artifacts/."""

from __future__ import annotations

from typing import Any

import pytest

from tenants.scope import dangerously_unscoped
from tests.tenants.console import test_browser
from tests.tenants.console.conftest import PASSWORD, World

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

ARTIFACTS = test_browser.ARTIFACTS
browser = test_browser.browser  # the same Chromium fixture

LONG_NAME = "Extraordinarily" * 11 + "LongShopNameWithoutSpaces"  # 190 of the 200 allowed


def _signed_in(chromium: Any, base: str, username: str, width: int) -> Any:
    page = chromium.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def _overflow(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize("width", [1280, 390])
def test_a_long_tenant_name_does_not_widen_pages(
    world: World, web_server: str, browser: Any, width: int
) -> None:
    with dangerously_unscoped():
        world.acme.name = LONG_NAME
        world.acme.save(update_fields=["name"])
    page = _signed_in(browser, web_server, "platform", width)
    slug = world.acme.slug
    for path in ("/", f"/tenants/{slug}/", f"/tenants/{slug}/keys/", f"/tenants/{slug}/people/"):
        page.goto(f"{web_server}{path}")
        assert _overflow(page) <= 1, (path, width, _overflow(page))
    page.screenshot(path=str(ARTIFACTS / f"console-long-name-{width}.png"), full_page=True)


def test_people_and_health_pages_in_a_browser(world: World, web_server: str, browser: Any) -> None:
    admin = _signed_in(browser, web_server, "acme-admin", 1280)
    admin.goto(f"{web_server}/tenants/{world.acme.slug}/people/")
    admin.fill("#invite-form input[name=username]", "browser-invitee")
    admin.select_option("#invite-form select[name=role]", "viewer")
    admin.click("#invite-form button[type=submit]")
    link = admin.inner_text("#invite-link")
    assert "/invite/" in link
    assert "browser-invitee" in admin.inner_text("#people")
    admin.screenshot(path=str(ARTIFACTS / "console-people-invited.png"), full_page=True)
    assert admin.locator("a:has-text('Health')").count() == 0

    platform = _signed_in(browser, web_server, "platform", 1280)
    platform.click("a:has-text('Health')")
    platform.wait_for_selector("#health-services")
    assert "postgres" in platform.inner_text("#health-services")
    platform.screenshot(path=str(ARTIFACTS / "console-platform-health.png"), full_page=True)
