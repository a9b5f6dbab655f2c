"""Server time of the console's busiest pages at scale: the tenants list, a tenant overview,
the topics page at 10,000 topics and a tenant's people page.

Seeds 1,000 tenants (each with a key), 100,000 audit rows, 10,000,000 telemetry rows over the
last 24 hours (generated inside ClickHouse: INSERT ... SELECT FROM numbers()), each tenant's 8
topics on the broker plus dead-letter twins for a quarter of them (10,000 topics and more), and
50 members for each of ten tenants, then requests each page through Django's full stack
(middleware, RLS scopes, templates) as a platform admin, and prints p50/p95. Target: p95 <= 250
ms for each.

Runs in a PostgreSQL database and a ClickHouse database of its own, dropped at the end, and on
the broker of KAFKA_BOOTSTRAP_SERVERS, whose `bench*` topics it deletes at the end.
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
DEAD_LETTER_EVERY = 4  # a tenant in four has had a dead letter: its .dlq twins exist
MEMBERS = 50  # of each of the first PEOPLE_TENANTS tenants
PEOPLE_TENANTS = 10
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
    from tenants.models import ApiKey, AuditEvent, Membership, Tenant
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
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"bench-member{n}", email=f"m{n}@example.com")
            for n in range(MEMBERS * PEOPLE_TENANTS)
        )
        roles = [role for role, _ in Membership.Role.choices]
        Membership.objects.bulk_create(
            Membership(tenant=tenants[n // MEMBERS], user=user, role=roles[n % len(roles)])
            for n, user in enumerate(users)
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


def bench_topics() -> list[str]:
    """Every seeded tenant's topics, and the dead-letter twins of one tenant in
    DEAD_LETTER_EVERY, as provisioning and a first dead letter make them."""
    from smarteros.events.catalog import tenant_dead_letter_topics, tenant_topics

    names = []
    for i in range(TENANTS):
        specs = tenant_topics(f"bench{i}")
        if i % DEAD_LETTER_EVERY == 0:
            specs += tenant_dead_letter_topics(f"bench{i}")
        names += [spec.name for spec in specs]
    return names


def topics_create(names: list[str]) -> str:
    """The topics on the broker, 400 a request; ones left from an interrupted run are kept."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    from smarteros.events.catalog import spec_for
    from smarteros.infra.kafka import admin_client

    started = time.perf_counter()
    admin = admin_client()
    for first in range(0, len(names), 400):
        batch = []
        for name in names[first : first + 400]:
            spec = spec_for(name)
            assert spec is not None, name
            batch.append(NewTopic(name, spec.partitions, 1, config=spec.config()))
        for future in admin.create_topics(batch, request_timeout=120).values():
            try:
                future.result()
            except Exception as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    return f"{len(names)} topics created in {time.perf_counter() - started:.1f} s"


def topics_delete(names: list[str]) -> None:
    from smarteros.infra.kafka import admin_client

    admin = admin_client()
    for first in range(0, len(names), 400):
        futures = admin.delete_topics(names[first : first + 400], request_timeout=120)
        for future in futures.values():
            try:
                future.result()
            except Exception as exc:  # already gone: nothing to clean
                print(f"leaving a topic: {exc}", file=sys.stderr)


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
    topics = bench_topics()
    try:
        print(seed(args.rows))
        print(topics_create(topics))
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
        # Pages of the platform admin's topics list, searches by tenant, name and kind included;
        # each page is asked of the broker for its own 100 topics.
        pages = [f"/topics/?page={n}" for n in range(1, len(topics) // 100, 9)]
        searches = [
            "/topics/?tenant=bench77",
            "/topics/?kind=dead-letter&page=3",
            "/topics/?name=webhooks",
        ]
        ok = report("topics page", timings(client, pages + searches, args.requests)) and ok
        people = [f"/tenants/bench{i}/people/" for i in range(PEOPLE_TENANTS)]
        ok = report("people page", timings(client, people, args.requests)) and ok
    finally:
        topics_delete(topics)
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
