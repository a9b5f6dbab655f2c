"""Telemetry throughput and chart-query latency, each against a baseline measured in this run:

1. raw clickhouse-driver bulk inserts of N telemetry rows vs the Kafka -> sink -> ClickHouse
   path for the same N events (target: at least 0.5x raw);
2. p95 of the console's chart queries over M rows spread over 30 days and 20 tenants
   (target: at most 300 ms).

Default: N = 100,000 and M = 1,000,000 (about a minute). --full: N = 1,000,000, M = 10,000,000.
Runs in a ClickHouse database of its own (smarteros_bench), dropped at the end.
Usage: .venv/bin/python bench/telemetry.py [--full]   (needs the local stack: make up)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

import django

django.setup()

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402

from smarteros.events.envelope import Envelope  # noqa: E402
from smarteros.infra.clickhouse import clickhouse_client  # noqa: E402
from smarteros.infra.kafka import admin_client, client_config  # noqa: E402
from telemetry.charts import chart_data  # noqa: E402
from telemetry.schema import clickhouse_migrate  # noqa: E402
from telemetry.sink import COLUMNS, TelemetrySink, row_from_envelope  # noqa: E402

RUN = uuid.uuid4().hex[:8]
DATABASE = "smarteros_bench"
# "_" keeps it out of the running stack's every-topic subscription: deleting a topic a consumer
# is fetching kills that process on the local broker (README, "The crash").
TOPIC = f"_bench.telemetry.{RUN}"
OPERATIONS = [
    "tenant_get_tenant",
    "shopify_get_product",
    "whatsapp_send_message",
    "agent_execute_tool",
    "n8n_trigger_workflow",
    "shopify_sync_products",
    "whatsapp_create_bot_response",
    "tenant_get_metrics",
]


def use_bench_database() -> None:
    base = settings.CLICKHOUSE_URL.rsplit("/", 1)[0]
    settings.CLICKHOUSE_URL = settings.CLICKHOUSE_READ_URL = f"{base}/{DATABASE}"
    clickhouse_migrate()


def execute(sql: str, params: object = None) -> list:  # type: ignore[type-arg]
    client = clickhouse_client(timeout=60)
    try:
        return list(client.execute(sql, params) if params is not None else client.execute(sql))
    finally:
        client.disconnect()


def envelope(n: int) -> Envelope:
    return Envelope(
        type="operation.called",
        source="bench",
        tenant=f"tenant{n % 20}",
        data={
            "operation": OPERATIONS[n % len(OPERATIONS)],
            "service": "bench",
            "surface": "rest",
            "status": "ok",
            "error_type": "",
            "latency_ms": 1.0 + n % 97,
            "input_bytes": 40,
            "output_bytes": 300,
            "model": "",
            "tokens_in": 0,
            "tokens_out": 0,
            "session_id": "",
        },
    )


def bench_raw_insert(events: int) -> float:
    rows = [row_from_envelope(envelope(n).to_bytes()) for n in range(events)]
    execute("TRUNCATE TABLE operation_calls")
    client = clickhouse_client(timeout=60)
    started = time.perf_counter()
    try:
        for first in range(0, events, 5000):
            client.execute(
                f"INSERT INTO operation_calls ({', '.join(COLUMNS)}) VALUES",
                rows[first : first + 5000],
            )
    finally:
        client.disconnect()
    return events / (time.perf_counter() - started)


def bench_sink(events: int) -> float:
    execute("TRUNCATE TABLE operation_calls")
    admin = admin_client()
    for future in admin.create_topics(
        [NewTopic(TOPIC, num_partitions=3, replication_factor=1)]
    ).values():
        future.result()
    producer = Producer(client_config(**{"linger.ms": 20}))
    for n in range(events):
        producer.produce(TOPIC, key=f"tenant{n % 20}".encode(), value=envelope(n).to_bytes())
        if n % 5000 == 0:
            producer.poll(0)
    producer.flush(120)
    inserted = 0
    first_insert: list[float] = []
    done = threading.Event()

    def on_insert(count: int) -> None:
        nonlocal inserted
        if not first_insert:
            first_insert.append(time.perf_counter())
        inserted += count
        if inserted >= events:
            done.set()

    assigned: list[float] = []
    sink = TelemetrySink(
        topic=TOPIC,
        on_insert=on_insert,
        batch_size=20000,
        batch_seconds=1.0,
        **{"group.id": f"bench-sink-{RUN}", "session.timeout.ms": 6000},
    )
    # The clock starts when the group has assigned the partitions: the join is a broker's
    # rebalance delay, not the sink's throughput.
    sink.on_assign = lambda consumer, partitions: assigned.append(time.perf_counter())
    thread = threading.Thread(target=sink.run)
    thread.start()
    done.wait(600)
    finished = time.perf_counter()
    sink.stop()
    thread.join(60)
    for future in admin.delete_topics([TOPIC]).values():
        future.result()
    if inserted < events:
        raise SystemExit(f"sink: only {inserted}/{events} inserted")
    return events / (finished - assigned[0])


def fill_rows(rows: int) -> None:
    """M rows over 30 days, 20 tenants, generated inside ClickHouse."""
    execute("TRUNCATE TABLE operation_calls")
    start = int((datetime.now() - timedelta(days=30)).timestamp())
    span = 30 * 86400
    operations = "[" + ", ".join(f"'{o}'" for o in OPERATIONS) + "]"
    execute(f"""
        INSERT INTO operation_calls ({", ".join(COLUMNS)})
        SELECT toString(number), toDateTime({start} + intDiv(number * {span}, {rows})),
               concat('tenant', toString(number % 20)), arrayElement({operations}, number % 8 + 1), 'bench',
               'rest', if(number % 50 = 0, 'error', 'ok'), if(number % 50 = 0, 'invalid_input', ''),
               (number % 997) / 10.0 + 0.5, 40, 300, if(number % 8 = 6, 'claude-test', ''),
               if(number % 8 = 6, 500, 0), if(number % 8 = 6, 80, 0), '', 'trace'
        FROM system.numbers LIMIT {rows}
    """)


def bench_chart_queries(samples: int = 20) -> tuple[float, float, int]:
    durations = []
    queries = 0
    for i in range(samples):
        for range_key in ("15m", "1h", "24h", "7d", "30d"):
            started = time.perf_counter()
            data = chart_data(tenants=[f"tenant{i % 20}"], range_key=range_key)
            durations.append((time.perf_counter() - started) * 1000)
            queries += 1
            assert "tools" in data
    durations.sort()
    return statistics.median(durations), durations[int(0.95 * (len(durations) - 1))], queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="1,000,000 events and 10,000,000 rows")
    parser.add_argument("--events", type=int)
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    events = args.events or (1_000_000 if args.full else 100_000)
    rows = args.rows or (10_000_000 if args.full else 1_000_000)
    use_bench_database()
    try:
        print(f"{events:,} telemetry events; chart queries over {rows:,} rows", flush=True)
        raw = bench_raw_insert(events)
        print(f"raw insert: {raw:,.0f} rows/s", flush=True)
        sink = bench_sink(events)
        print(f"sink: {sink:,.0f} events/s", flush=True)
        print(f"ratio: {sink / raw:.2f}  (target >= 0.5)", flush=True)
        fill_rows(rows)
        p50, p95, count = bench_chart_queries()
        print(
            f"chart queries: {count} page loads, p50 {p50:.0f} ms, p95 {p95:.0f} ms  (target p95 <= 300 ms)"
        )
    finally:
        base = settings.CLICKHOUSE_URL.rsplit("/", 1)[0]
        settings.CLICKHOUSE_URL = f"{base}/default"
        execute(f"DROP DATABASE IF EXISTS {DATABASE}")


if __name__ == "__main__":
    main()
