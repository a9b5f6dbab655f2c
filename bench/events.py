"""Event throughput: raw confluent-kafka produce-and-consume vs SmarterOS's outbox -> relay ->
consumer group path, on the same broker in the same run. Targets: at least 0.3x raw, and at
least 5,000 events/s end to end.

Both paths run their stages concurrently, as in production: the clock starts with the first
write and stops when the consumer has handled the last event.

Usage: .venv/bin/python bench/events.py [--events N]   (needs the local stack: make up)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")

import django

django.setup()

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402
from django.db import connection  # noqa: E402

from smarteros.events.consumers import GroupWorker, Registration  # noqa: E402
from smarteros.events.envelope import Envelope  # noqa: E402
from smarteros.events.outbox import outbox_emit_many  # noqa: E402
from smarteros.events.schemas import EventData, event_type  # noqa: E402
from smarteros.infra.kafka import admin_client, client_config  # noqa: E402
from smarteros.models import OutboxEvent, ProcessedEvent  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.scope import dangerously_unscoped, tenant_scope  # noqa: E402

RUN = uuid.uuid4().hex[:8]
RAW_TOPIC, OUTBOX_TOPIC = f"bench.raw.{RUN}", f"bench.outbox.{RUN}"
WRITE_BATCH = 500
WRITERS = 2


@event_type("bench.ping")
class BenchPing(EventData):
    n: int


def create_topics() -> None:
    admin = admin_client()
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=3, replication_factor=1) for t in (RAW_TOPIC, OUTBOX_TOPIC)]
    )
    for future in futures.values():
        future.result()


def payload(n: int) -> bytes:
    return Envelope(type="bench.ping", source="bench", tenant="bench", data={"n": n}).to_bytes()


def consumer_process(mode: str, events: int, group: str) -> subprocess.Popen[str]:
    """A consumer in a process of its own, as in production; prints READY once it has joined
    its group, then DONE <unix time> when it has handled `events` events."""
    return subprocess.Popen(
        [sys.executable, __file__, "--consume", mode, "--events", str(events), "--group", group],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise SystemExit(f"consumer exited before {prefix}")


def run_consumer(mode: str, events: int, group: str) -> None:
    if mode == "raw":
        consumer = Consumer(
            client_config(
                **{"group.id": group, "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
            )
        )
        consumer.subscribe([raw_topic_for(group)])
        consumer.poll(5)
        print("READY", flush=True)
        received = 0
        while received < events:
            received += sum(
                1 for m in consumer.consume(num_messages=1000, timeout=0.5) if not m.error()
            )
        print(f"DONE {time.time()}", flush=True)
        consumer.close()
        return
    handled = 0

    def count(envelope: Envelope) -> None:
        nonlocal handled
        handled += 1
        if handled == events:
            print(f"DONE {time.time()}", flush=True)
            worker.stop()

    worker = GroupWorker(
        group,
        [Registration(outbox_topic_for(group), "bench.ping", group, count)],
        **{"session.timeout.ms": 6000},  # type: ignore[arg-type]
    )
    threading.Timer(4, lambda: print("READY", flush=True)).start()
    worker.run(batch_size=1000)


def raw_topic_for(group: str) -> str:
    return f"bench.raw.{group.rsplit('-', 1)[-1]}"


def outbox_topic_for(group: str) -> str:
    return f"bench.outbox.{group.rsplit('-', 1)[-1]}"


def bench_raw(events: int) -> float:
    consumer = consumer_process("raw", events, f"bench-raw-{RUN}")
    wait_line(consumer, "READY")
    producer = Producer(
        client_config(**{"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    )
    started = time.time()
    for n in range(events):
        producer.produce(RAW_TOPIC, key=str(n % 97).encode(), value=payload(n))
        if n % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    finished = float(wait_line(consumer, "DONE").split()[1])
    consumer.wait(30)
    return events / (finished - started)


def bench_outbox(events: int) -> float:
    with dangerously_unscoped():
        tenant, _ = Tenant.objects.get_or_create(
            slug="bench", defaults={"name": "Bench", "status": "active"}
        )
    group = f"bench-outbox-{RUN}"
    consumer = consumer_process("outbox", events, group)
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "run_outbox_relay"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
    )
    wait_line(consumer, "READY")

    def write(offset: int) -> None:
        # Writers run side by side, as request handlers do; each commits batches of WRITE_BATCH.
        for first in range(offset * WRITE_BATCH, events, WRITERS * WRITE_BATCH):
            batch = [
                (
                    OUTBOX_TOPIC,
                    Envelope(type="bench.ping", source="bench", tenant="bench", data={"n": n}),
                    str(n % 97),
                )
                for n in range(first, min(first + WRITE_BATCH, events))
            ]
            with tenant_scope(tenant.pk):
                outbox_emit_many(batch, tenant_id=tenant.pk)
        connection.close()

    writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    started = time.time()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    print(f"  (writers done after {time.time() - started:.2f}s)", flush=True)
    finished = float(wait_line(consumer, "DONE").split()[1])
    relay.terminate()
    relay.wait(30)
    consumer.wait(30)
    with dangerously_unscoped():
        OutboxEvent.objects.filter(topic=OUTBOX_TOPIC).delete()
        ProcessedEvent.objects.filter(group__endswith=group).delete()
    return events / (finished - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--consume", choices=["raw", "outbox"], help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        run_consumer(args.consume, args.events, args.group)
        return
    create_topics()
    print(f"{args.events} events of ~{len(payload(0))} bytes per path", flush=True)
    raw = bench_raw(args.events)
    print(f"raw: {raw:,.0f} events/s", flush=True)
    outbox = bench_outbox(args.events)
    print(f"outbox: {outbox:,.0f} events/s", flush=True)
    print(f"ratio: {outbox / raw:.2f}")
    admin = admin_client()
    for future in admin.delete_topics([RAW_TOPIC, OUTBOX_TOPIC]).values():
        future.result()


if __name__ == "__main__":
    main()
