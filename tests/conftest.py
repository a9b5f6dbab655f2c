from __future__ import annotations

import faulthandler
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.processes import ROOT, asgi_server

# Tenant-influenced calls reach the loopback stand-ins of third-party SaaS through the operator
# allowlist, as tests set it (the platform's own services on loopback stay refused); servers
# the tests start inherit it.
os.environ.setdefault("EGRESS_ALLOWED_NETWORKS", "127.0.0.1/32")


@pytest.fixture(autouse=True, scope="session")
def egress_allows_the_standins() -> None:
    from django.conf import settings

    settings.EGRESS_ALLOWED_NETWORKS = os.environ["EGRESS_ALLOWED_NETWORKS"].split(",")


# Tiers: `make check` leaves out what starts whole stacks, stops services, drives a browser or a
# real n8n, or fuzzes; `make test` (CI) runs everything. A module's tier follows from its path.
TIERS: dict[str, tuple[str, ...]] = {
    "stack": ("tests/test_stack.py", "tests/test_devstack.py", "tests/effects/test_worker_kill.py"),
    "soak": ("tests/soak/",),
    "dr": ("tests/dr/",),
    "browser": ("test_browser.py",),
    "real_n8n": ("tests/integrations/test_n8n_real.py", "tests/test_install_n8n.py"),
    "fuzz": ("tests/fuzz/",),
    "faults": (
        "broker_restart",
        "broker_away",
        "consumer_faults",
        "recording_shutdown",
        "test_broker_quirks.py",
    ),
}


SUITE_REFUSALS_PER_SOURCE = 1_000_000


def pytest_configure(config: pytest.Config) -> None:
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: slow tier, left out of `make check`")
    # The test profile's fast hasher in this process too (servers it starts get SMARTEROS_ENV=test).
    from django.conf import settings

    settings.PASSWORD_HASHERS = settings.TEST_PASSWORD_HASHERS
    # The suite's refused requests all come from 127.0.0.1 (and share one Redis): the tests of
    # the per-source bucket lower this and use addresses of their own.
    settings.REFUSALS_PER_SOURCE_PER_MINUTE = SUITE_REFUSALS_PER_SOURCE


# How long the process may take to exit once the run is over, before it is made to.
EXIT_GRACE_SECONDS = 60


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that is over always ends: if something a test left behind (a thread, a loop still
    cancelling an application) keeps the interpreter from exiting, print what is still running
    and exit with the run's own status instead of hanging until CI's time runs out."""

    def exit_anyway() -> None:
        time.sleep(EXIT_GRACE_SECONDS)
        print(
            f"\n[tests] the run finished but the process had not exited {EXIT_GRACE_SECONDS}s "
            "later; still running:",
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(int(exitstatus))

    threading.Thread(target=exit_anyway, name="exit-watchdog", daemon=True).start()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every database test may use both logins (the app's, and the platform's inside
    dangerously_unscoped), and commits for real: two sessions cannot share one test
    transaction, and the platform's writes would otherwise outlive the test."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        for tier, patterns in TIERS.items():
            if any(pattern in path for pattern in patterns):
                item.add_marker(getattr(pytest.mark, tier))
        marker = item.get_closest_marker("django_db")
        if marker is not None:
            kwargs = {**marker.kwargs, "transaction": True, "databases": "__all__"}
            item.add_marker(pytest.mark.django_db(*marker.args, **kwargs), append=False)


@dataclass
class TenantKey:
    tenant: Any
    key: str


@pytest.fixture
def demo(db):  # type: ignore[no-untyped-def]
    """The demo operator and tenants, with their API keys."""
    from tenants.demo import demo_seed

    return demo_seed()


@pytest.fixture
def make_tenant(db) -> Callable[..., TenantKey]:  # type: ignore[no-untyped-def]
    """Create an active tenant with an API key (scopes default to every operation of the tenant
    itself, admin ones included; platform scopes are granted as a platform admin would)."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped
    from tenants.scopes import TENANT_OWNER_SCOPES
    from tenants.services import api_key_create

    def make(
        slug: str, *, scopes: list[str] | None = None, rate_limit: int | None = None
    ) -> TenantKey:
        with dangerously_unscoped():
            tenant = Tenant.objects.create(
                slug=slug,
                name=slug.title(),
                status=Tenant.Status.ACTIVE,
                rate_limit_per_minute=rate_limit,
            )
            issued = api_key_create(
                tenant=tenant,
                name="test",
                scopes=scopes if scopes is not None else TENANT_OWNER_SCOPES,
                platform_allowed=True,
            )
        return TenantKey(tenant, issued.secret)

    return make


@pytest.fixture
def connect() -> Callable[..., Any]:
    """Connect a tenant to a provider served by the loopback SaaS stand-in, with the signing
    secrets of tests.fixtures.deliveries (shop domain `<slug>.myshopify.com`)."""
    from tests.fixtures.deliveries import (
        CLERK_INSTANCE_ID,
        CLERK_SIGNING_SECRET,
        META_APP_SECRET,
        N8N_WEBHOOK_SECRET,
        PHONE_NUMBER_ID,
        SHOPIFY_APP_SECRET,
    )
    from tests.fixtures.saas import LLM_KEY, N8N_KEY, SHOPIFY_TOKEN, WHATSAPP_TOKEN

    def do(tenant: Any, provider: str, base_url: str) -> Any:
        from integrations.services import integration_connect

        config, credentials = {
            "shopify": (
                {"shop_domain": f"{tenant.slug}.myshopify.com", "api_base_url": base_url},
                {"access_token": SHOPIFY_TOKEN, "app_secret": SHOPIFY_APP_SECRET},
            ),
            "whatsapp": (
                {
                    "phone_number_id": PHONE_NUMBER_ID,
                    "api_base_url": base_url,
                    "llm_base_url": base_url,
                    "llm_model": "claude-test",
                },
                {
                    "access_token": WHATSAPP_TOKEN,
                    "llm_api_key": LLM_KEY,
                    "app_secret": META_APP_SECRET,
                },
            ),
            "n8n": (
                {"base_url": base_url},
                {"api_key": N8N_KEY, "webhook_secret": N8N_WEBHOOK_SECRET},
            ),
            "clerk": ({"instance_id": CLERK_INSTANCE_ID}, {"signing_secret": CLERK_SIGNING_SECRET}),
        }[provider]
        return integration_connect(
            tenant=tenant, provider=provider, config=config, credentials=credentials
        )

    return do


@pytest.fixture
def saas() -> Iterator[Any]:
    from tests.fixtures.saas import SaasServer

    with SaasServer() as server:
        yield server


@pytest.fixture
def broker(settings: Any) -> Iterator[Any]:
    """A fresh Kafka-API broker for this test, with the catalog's platform topics."""
    from smarteros.events import failures, outbox
    from smarteros.events.catalog import platform_topics
    from smarteros.events.topics import topics_sync
    from smarteros.infra.kafka import forget_producers
    from tests.processes import kafka_broker

    with kafka_broker() as server:
        settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{server.port}"
        settings.KAFKA_CONSUMER_GROUP_PREFIX = f"test{secrets.token_hex(3)}"
        forget_producers()
        outbox._known_topics.clear()
        failures._known_dead_letter_topics.clear()
        topics_sync(platform_topics())
        yield server
        forget_producers()
        outbox._known_topics.clear()
        failures._known_dead_letter_topics.clear()


@pytest.fixture(scope="session")
def server_env(django_db_setup, django_db_blocker) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Environment for server subprocesses: the same settings, pointed at the test database."""
    from django.db import connections

    def url(alias: str) -> str:
        db = connections[alias].settings_dict
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    return {
        **os.environ,
        "DATABASE_URL": url("default"),
        "DATABASE_PLATFORM_URL": url("platform"),
        "SMARTEROS_ENV": "test",
        "REFUSALS_PER_SOURCE_PER_MINUTE": str(SUITE_REFUSALS_PER_SOURCE),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def web_server(server_env: dict[str, str]) -> Iterator[str]:
    """The ASGI app (Django, /mcp, /api) under uvicorn, as `make run` serves it."""
    server = asgi_server(env=server_env)
    yield server.url
    server.stop()


def run_manage(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(check: Callable[[], Any], *, timeout: float = 30, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def effects_in_process() -> Iterator[None]:
    """Effects enqueued by code running in the test process are performed in that process
    right after commit (Celery's eager mode). Tests of the Celery worker itself start real ones."""
    from smarteros.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
