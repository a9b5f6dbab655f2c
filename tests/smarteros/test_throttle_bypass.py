"""The sign-in and API-key throttles as an attacker tries to step around them: a username that
NFKC-normalises to the victim's (`adv3-victim` in full-width letters), other cases of it, many addresses against one
account, and X-Forwarded-For written by the client; against real Redis, PostgreSQL and, for the
API keys, the ASGI app under uvicorn as `make run` starts it."""

from __future__ import annotations

import importlib.util
import random
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from smarteros.client_address import client_address
from smarteros.login_throttle import username_key
from tests.processes import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-throttle-bypass-1"


@pytest.fixture
def victim() -> str:
    # A fresh name each run: the failure counters live in Redis, beyond the test database.
    username = f"adv3-victim-{secrets.token_hex(3)}"
    get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    return username


def fullwidth(text: str) -> str:
    """The same letters in their full-width forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def sign_in(client: Client, username: str, password: str) -> int:
    return client.post("/login/", {"username": username, "password": password}).status_code


def test_an_nfkc_equivalent_or_recased_username_counts_as_the_same_account(victim: str) -> None:
    assert username_key(fullwidth(victim)) == username_key(victim.upper()) == victim
    attacker = Client(REMOTE_ADDR="203.0.113.21")
    for spelling in (victim, victim.upper(), fullwidth(victim), victim, fullwidth(victim)):
        assert sign_in(attacker, spelling, "wrong") == 400
    # Django signs the full-width name in as `adv3-victim`; the throttle refuses it as that account.
    for spelling in (fullwidth(victim), victim.upper(), victim):
        assert sign_in(attacker, spelling, PASSWORD) == 429
        assert "_auth_user_id" not in attacker.session


def test_many_addresses_against_one_account_lock_the_account(victim: str, settings: Any) -> None:
    settings.LOGIN_MAX_ACCOUNT_FAILURES = 12
    for i in range(12):
        assert sign_in(Client(REMOTE_ADDR=f"198.51.100.{i + 1}"), victim, "wrong") == 400
    fresh = Client(REMOTE_ADDR="198.51.100.200")
    assert sign_in(fresh, fullwidth(victim), PASSWORD) == 429
    assert "_auth_user_id" not in fresh.session


def test_x_forwarded_for_from_the_client_does_not_make_a_new_address(victim: str) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.22")
    for i in range(5):
        response = attacker.post(
            "/login/",
            {"username": victim, "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i + 1}",
        )
        assert response.status_code == 400
    refused = attacker.post(
        "/login/", {"username": victim, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.99"
    )
    assert refused.status_code == 429


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(settings: Any) -> None:
    settings.TRUSTED_PROXIES = []
    assert client_address(peer="10.0.0.5", forwarded_for="192.0.2.7") == "10.0.0.5"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    # The nearest hop that is not a trusted proxy is the client; what it claims before is not.
    assert client_address(peer="10.0.0.5", forwarded_for="6.6.6.6, 192.0.2.7") == "192.0.2.7"
    assert client_address(peer="10.0.0.5", forwarded_for="192.0.2.7, 10.1.1.1") == "192.0.2.7"
    assert client_address(peer="203.0.113.5", forwarded_for="192.0.2.7") == "203.0.113.5"
    assert client_address(peer="10.0.0.5", forwarded_for="not-an-address") == "10.0.0.5"
    assert client_address(peer="10.0.0.5", forwarded_for=None) == "10.0.0.5"


def test_api_key_guesses_with_a_new_x_forwarded_for_each_are_still_throttled(
    server_env: dict[str, str],
) -> None:
    # uvicorn believes proxy headers from FORWARDED_ALLOW_IPS unless started without them, as
    # `make run` starts it: trusting every peer here shows the flag is what holds. A loopback
    # address of its own keeps this test's refusals out of other tests' count.
    server = asgi_server(env=dict(server_env, FORWARDED_ALLOW_IPS="*"))
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    transport = httpx.HTTPTransport(local_address=address)
    limit = settings.AUTH_FAILURES_PER_MINUTE
    try:
        with httpx.Client(transport=transport, base_url=server.url, timeout=10) as client:
            statuses = []
            for i in range(limit + 2):
                headers = {
                    "Authorization": f"Bearer sos_live_guess{i}",
                    "X-Forwarded-For": f"192.0.2.{random.randint(1, 254)}",
                    "X-Real-IP": f"198.51.100.{random.randint(1, 254)}",
                }
                rest = client.post("/api/v1/tenant/get_tenant", json={}, headers=headers)
                statuses.append(rest.status_code)
            assert set(statuses[:limit]) == {401}
            assert statuses[-2:] == [429, 429]
            mcp = client.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={
                    "Authorization": "Bearer sos_live_guess-mcp",
                    "X-Forwarded-For": "192.0.2.251",
                    "Accept": "application/json, text/event-stream",
                },
            )
            assert mcp.status_code == 429
    finally:
        server.stop()


def test_the_local_stack_serves_the_web_process_without_proxy_header_rewriting() -> None:
    path = Path(__file__).resolve().parents[2] / "scripts" / "devstack.py"
    spec = importlib.util.spec_from_file_location("devstack_for_test", path)
    assert spec is not None and spec.loader is not None
    devstack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = devstack  # its dataclasses look their module up while defined
    try:
        spec.loader.exec_module(devstack)
    finally:
        del sys.modules[spec.name]
    [web] = [process for process in devstack.PROCESSES if process.name == "web"]
    command = web.argv()
    assert "--no-proxy-headers" in command and "--proxy-headers" not in command
    assert "--forwarded-allow-ips" not in command
