"""The web tier's shortcuts keep their bounds: keys checked once per API_KEY_CACHE_SECONDS, yet a
revoked key or a suspended tenant is refused by a running server within that bound; a key's
last use is written once a minute, not on every call."""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.processes import ServerProcess, free_port

pytestmark = pytest.mark.django_db(transaction=True)

# Time for a request to cross the server and for the test's own polling.
MARGIN_SECONDS = 3.0
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "tenant_get_tenant", "arguments": {}},
}
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


@pytest.fixture(autouse=True)
def _forget_refusals() -> Iterator[None]:
    # Polling for a refusal spends this address's budget of refused keys; later tests (here or
    # elsewhere) expect a 401 rather than the throttle's 429.
    from smarteros.infra.redis import get_redis

    yield
    get_redis().delete("smarteros:authfail:127.0.0.1")


@pytest.fixture(scope="module")
def pooled_workers(server_env: dict[str, str]) -> Iterator[str]:
    """The web tier as make run serves it: two uvicorn workers, each with a database pool."""
    port = free_port()

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    server = ServerProcess(
        [sys.executable, "-m", "uvicorn", "smarteros.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "on", "--workers", "2"],
        port=port,
        env={**server_env, "DATABASE_POOL": "true", "DATABASE_POOL_MAX_SIZE": "4"},
        ready=healthy,
        timeout=90,
    )  # fmt: skip
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["web_server", "pooled_workers"])
def server(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


# 429: refused again, past AUTH_FAILURES_PER_MINUTE refusals from this address (a good key is
# never throttled, so it still says the key was refused).
REFUSED = {401, 429}


def _refused(statuses: tuple[int, int]) -> bool:
    return set(statuses) <= REFUSED


def _statuses(web_server: str, secret: str) -> tuple[int, int]:
    auth = {"Authorization": f"Bearer {secret}"}
    rest = httpx.post(f"{web_server}/api/v1/tenant/get_tenant", json={}, headers=auth)
    mcp = httpx.post(f"{web_server}/mcp", json=CALL, headers={**MCP_HEADERS, **auth})
    return rest.status_code, mcp.status_code


def _refused_everywhere_within_the_bound(web_server: str, secret: str) -> None:
    """Every request is refused, on every worker, at most API_KEY_CACHE_SECONDS (plus a margin)
    after the change. Each worker forgets on its own clock, so one refusal proves nothing about
    the others: wait for a run of refusals long enough to have reached every worker."""
    started = time.monotonic()
    deadline = started + settings.API_KEY_CACHE_SECONDS + MARGIN_SECONDS
    in_a_row = 0
    while in_a_row < 6:
        statuses = _statuses(web_server, secret)
        in_a_row = in_a_row + 1 if _refused(statuses) else 0
        if in_a_row == 0 and time.monotonic() > deadline:
            pytest.fail(
                f"still answered {statuses} {time.monotonic() - started:.1f}s after the change; "
                f"the bound is API_KEY_CACHE_SECONDS={settings.API_KEY_CACHE_SECONDS}"
            )
        if in_a_row == 0:
            time.sleep(0.3)


def test_a_revoked_key_is_refused_by_a_running_server_within_the_bound(
    server: str, make_tenant: Any
) -> None:
    from tenants.models import ApiKey
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    # Each request opens a connection of its own, which any worker may accept: with several,
    # both workers serve some and hold the key.
    for _ in range(6):
        assert _statuses(server, acme.key) == (200, 200)
    with dangerously_unscoped():
        # As another process would revoke it: nothing in the server hears of it.
        ApiKey.objects.filter(tenant=acme.tenant).update(revoked_at=timezone.now())
    _refused_everywhere_within_the_bound(server, acme.key)


def test_a_suspended_tenant_is_refused_by_a_running_server_within_the_bound(
    server: str, make_tenant: Any
) -> None:
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    for _ in range(6):
        assert _statuses(server, acme.key) == (200, 200)
    with dangerously_unscoped():
        Tenant.objects.filter(pk=acme.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    _refused_everywhere_within_the_bound(server, acme.key)


def test_an_accepted_key_is_not_looked_up_again_within_the_bound(make_tenant: Any) -> None:
    from mcp_tools.auth import principal_cache, principal_from_api_key

    acme = make_tenant("acme")
    principal_cache.clear()
    first = principal_from_api_key(acme.key)
    with CaptureQueriesContext(connections["platform"]) as platform:
        again = principal_from_api_key(acme.key)
    assert again == first
    assert len(platform.captured_queries) == 0


def test_a_change_made_in_the_same_process_is_seen_at_once(make_tenant: Any) -> None:
    from mcp_tools.auth import principal_from_api_key
    from smarteros.errors import AuthenticationFailed
    from tenants.scope import dangerously_unscoped
    from tenants.services import api_key_revoke

    acme = make_tenant("acme")
    principal_from_api_key(acme.key)
    with dangerously_unscoped():
        api_key_revoke(api_key=acme.tenant.api_keys.get())
    with pytest.raises(AuthenticationFailed):
        principal_from_api_key(acme.key)


def test_the_last_use_is_written_at_most_once_a_minute(make_tenant: Any) -> None:
    from tenants.models import ApiKey
    from tenants.scope import dangerously_unscoped
    from tenants.services import api_key_authenticate

    acme = make_tenant("acme")

    def authenticate_and_read() -> Any:
        with dangerously_unscoped():
            api_key_authenticate(secret=acme.key)
            return ApiKey.objects.get(tenant=acme.tenant).last_used_at

    first = authenticate_and_read()
    assert first is not None
    with CaptureQueriesContext(connections["platform"]) as platform:
        assert authenticate_and_read() == first
    assert not [q for q in platform.captured_queries if q["sql"].startswith("UPDATE")]

    long_ago = timezone.now() - timedelta(minutes=2)
    with dangerously_unscoped():
        ApiKey.objects.filter(tenant=acme.tenant).update(last_used_at=long_ago)
    assert authenticate_and_read() > long_ago


def test_a_plain_call_is_answered_with_json_and_a_progress_call_with_a_stream(
    web_server: str, make_tenant: Any, connect: Any, saas: Any
) -> None:
    import anyio

    from tests.mcp_tools.clients import http_client

    acme = make_tenant("acme")
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {acme.key}"}
    plain = httpx.post(f"{web_server}/mcp", json=CALL, headers=headers)
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["result"]["structuredContent"]["slug"] == "acme"

    # Progress needs the event stream: a call that asks for it still gets every notification.
    connect(acme.tenant, "shopify", saas.url)
    saas.state.shopify.bulk_polls = 0  # the export is ready at the first look
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async def main() -> Any:
        async with http_client(web_server, acme.key) as client:
            return await client.call_tool(
                "shopify_sync_products", {}, progress_callback=on_progress
            )

    result = anyio.run(main)
    assert result.structured_content["synced"] == 7
    assert result.structured_content["complete"] is True
    assert updates[-1] == 7
