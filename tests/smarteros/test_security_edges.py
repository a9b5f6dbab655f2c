"""Login throttling, the console's Content-Security-Policy, and who sees /readyz details, as a
browser (Django's test client) against real Redis and PostgreSQL."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-security-edges-1"


@pytest.fixture
def operator() -> str:
    # A fresh name each run: the failure counters live in Redis, beyond the test database.
    username = f"op-{secrets.token_hex(4)}"
    get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    return username


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_five_failures_lock_the_username_from_that_address(operator: str, path: str) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        response = attacker.post(path, {"username": operator, "password": "wrong"})
        assert response.status_code == (400 if path == "/login/" else 200)
    refused = attacker.post(path, {"username": operator, "password": PASSWORD})
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in attacker.session
    if path == "/login/":
        assert refused.status_code == 429
    # The same person from another address is not locked out by the attacker.
    elsewhere = Client(REMOTE_ADDR="198.51.100.9")
    assert elsewhere.post(path, {"username": operator, "password": PASSWORD}).status_code == 302


def test_a_success_clears_the_count(operator: str) -> None:
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(4):
        client.post("/login/", {"username": operator, "password": "wrong"})
    assert client.post("/login/", {"username": operator, "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(4):
        client.post("/login/", {"username": operator, "password": "wrong"})
    assert client.post("/login/", {"username": operator, "password": PASSWORD}).status_code == 302


def test_console_pages_carry_a_content_security_policy(operator: str) -> None:
    client = Client()
    assert client.login(username=operator, password=PASSWORD)
    for path in ("/login/", "/", "/telemetry/"):
        response = client.get(path)
        policy = response.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        body = response.content.decode()
        assert "<script>" not in body and "<style" not in body and " style=" not in body, path


def test_readyz_details_only_for_staff_or_loopback(operator: str) -> None:
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    response = stranger.get("/readyz")
    assert set(response.json()) == {"status"} and response.status_code in (200, 503)
    local = Client(REMOTE_ADDR="127.0.0.1").get("/readyz").json()
    assert "dependencies" in local and "postgresql" in str(local["dependencies"]).lower()
    staff = Client(REMOTE_ADDR="203.0.113.9")
    assert staff.login(username=operator, password=PASSWORD)
    assert "dependencies" in staff.get("/readyz").json()


def test_readyz_fails_when_the_platform_login_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    # The local server trusts loopback passwords; a role that does not exist is refused anyway.
    monkeypatch.setitem(settings.DATABASES["platform"], "USER", "smarteros_no_such_role")
    response = Client(REMOTE_ADDR="127.0.0.1").get("/readyz")
    body = response.json()
    assert response.status_code == 503 and body["down"] == ["postgres"]
    assert "platform login" in body["dependencies"]["postgres"]["detail"]
