"""Server time of the console's busiest pages at scale: the tenants list and a tenant overview.

Seeds 1,000 tenants (each with a key), 100,000 audit rows and 10,000,000 telemetry rows over the
last 24 hours (generated inside ClickHouse: INSERT ... SELECT FROM numbers()), then requests each
page through Django's full stack (middleware, RLS scopes, templates) as a platform admin, and
prints p50/p95. Target: p95 <= 250 ms for both.

Runs in a PostgreSQL database and a ClickHouse database of its own, dropped at the end.
Usage: .venv/bin/python bench/console.py [--rows N] [--requests N]   (needs the local stack)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

TENANTS = 1_000
AUDIT_ROWS = 100_000
TARGET_MS = 250.0
CLICKHOUSE_DATABASE = f"smarteros_bench_console_{uuid.uuid4().hex[:6]}"


def use_own_databases() -> tuple[Any, str]:
    from telemetry.schema import clickhouse_migrate

    test_settings: Any = settings.DATABASES["default"]["TEST"]
    test_settings["NAME"] = "bench_console_" + str(settings.DATABASES["default"]["NAME"])
    old = setup_databases(verbosity=0, interactive=False, aliases={"default": {}, "platform": {}})
    base = settings.CLICKHOUSE_URL.rsplit("/", 1)[0]
    settings.CLICKHOUSE_URL = settings.CLICKHOUSE_READ_URL = f"{base}/{CLICKHOUSE_DATABASE}"
    clickhouse_migrate()
    return old, base


def seed(rows: int) -> str:
    from django.contrib.auth import get_user_model

    from smarteros.infra.clickhouse import clickhouse_client
    from tenants.models import ApiKey, AuditEvent, Tenant
    from tenants.scope import dangerously_unscoped

    started = time.perf_counter()
    plans, statuses = ["free", "pro", "enterprise"], ["active"] * 8 + ["suspended", "pending"]
    with dangerously_unscoped():
        tenants = Tenant.objects.bulk_create(
            Tenant(
                slug=f"bench{i}",
                name=f"Bench shop {i}",
                plan=plans[i % 3],
                status=statuses[i % 10],
            )
            for i in range(TENANTS)
        )
        ApiKey.objects.bulk_create(
            ApiKey(
                tenant=t,
                name="bench",
                prefix=f"sos_live_{i:06d}",
                key_hash=f"{i:064d}",
                scopes=["*"],
            )
            for i, t in enumerate(tenants)
        )
        for first in range(0, AUDIT_ROWS, 10_000):
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    tenant=tenants[n % TENANTS],
                    actor=f"user:ops{n % 7}",
                    action=("api_key.create", "tenant.suspend", "admin.change")[n % 3],
                    target=f"ApiKey:{n}",
                )
                for n in range(first, first + 10_000)
            )
    get_user_model().objects.create_superuser("bench-ops", "ops@example.com", "bench-ops-password")
    client = clickhouse_client(timeout=600)
    try:
        # Generated server-side: ten million rows in seconds, none through Python.
        client.execute(
            "INSERT INTO operation_calls (event_id, time, tenant, operation, service, surface, "
            "status, error_type, latency_ms, input_bytes, output_bytes, model, tokens_in, "
            "tokens_out, session_id, trace_id) "
            "SELECT toString(number), now() - (number % 86400), "
            f"concat('bench', toString(number % {TENANTS})), "
            "['tenant_get_tenant','shopify_get_product','whatsapp_send_message','agent_execute_tool'][number % 4 + 1], "
            "['tenant','shopify','whatsapp','agent'][number % 4 + 1], 'rest', "
            "if(number % 50 = 0, 'error', 'ok'), if(number % 50 = 0, 'upstream_error', ''), "
            "toFloat64(number % 97), 40, 300, '', 0, 0, '', '' "
            f"FROM system.numbers LIMIT {rows}"
        )
        client.execute(
            "INSERT INTO topic_messages (minute, tenant, topic, messages) "
            "SELECT toStartOfMinute(now() - (number % 86400)), "
            f"concat('bench', toString(number % {TENANTS})), "
            f"concat('bench', toString(number % {TENANTS}), '.shopify.webhooks'), 1 "
            "FROM system.numbers LIMIT 1000000"
        )
    finally:
        client.disconnect()
    return f"seeded in {time.perf_counter() - started:.1f} s"


def timings(client: object, urls: list[str], requests: int) -> list[float]:
    spent = []
    for n in range(requests):
        url = urls[n % len(urls)]
        started = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        spent.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return spent


def report(name: str, spent: list[float]) -> bool:
    ordered = sorted(spent)
    p50 = statistics.median(ordered)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    ok = p95 <= TARGET_MS
    print(
        f"{name:<16} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {'OK' if ok else 'OVER'} (target p95 <= {TARGET_MS:.0f} ms)"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="telemetry rows")
    parser.add_argument("--requests", type=int, default=60, help="requests per page")
    args = parser.parse_args()
    from django.test import Client

    from smarteros.infra.clickhouse import clickhouse_client

    settings.ALLOWED_HOSTS = ["*"]
    old, base = use_own_databases()
    try:
        print(seed(args.rows))
        client = Client()
        client.login(username="bench-ops", password="bench-ops-password")
        client.get("/tenants/")  # warm-up: templates compiled, connections open
        lists = [
            "/tenants/",
            "/tenants/?page=7",
            "/tenants/?status=active&sort=-created",
            "/tenants/?q=bench5&plan=pro",
            "/tenants/?page=20&sort=name",
        ]
        overviews = [f"/tenants/bench{i}/" for i in range(0, TENANTS, 97)]
        ok = report("tenants list", timings(client, lists, args.requests))
        ok = report("tenant overview", timings(client, overviews, args.requests)) and ok
    finally:
        from django.db import connections

        connections.close_all()
        teardown_databases(old, verbosity=0)
        admin = clickhouse_client(database="default", url=f"{base}/default")
        try:
            admin.execute(f"DROP DATABASE IF EXISTS `{CLICKHOUSE_DATABASE}`")
        finally:
            admin.disconnect()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
