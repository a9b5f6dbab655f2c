"""Event throughput: raw confluent-kafka produce-and-consume vs SmarterOS's outbox -> relay ->
consumer group (hosted by a Celery worker, as in production) path, on the same broker in the same run. Targets: at least 0.3x raw, and at
least 5,000 events/s end to end.

Both paths run their stages concurrently, as in production: a round's clock starts with its
first write and stops when the consumer has handled its last event. The consumers (and the
relay) are processes of their own that live through the whole run; rounds of the two paths
alternate, so drift in the machine (CPU frequency, neighbours) affects both alike, and the
medians are compared.

Usage: .venv/bin/python bench/events.py [--events N] [--rounds R]   (needs the local stack: make up)
"""

from __future__ import annotations

import argparse
import os
import statistics
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

from smarteros.events.consumers import handles  # noqa: E402
from smarteros.events.envelope import Envelope  # noqa: E402
from smarteros.events.outbox import outbox_emit_many  # noqa: E402
from smarteros.events.schemas import EventData, event_type  # noqa: E402
from smarteros.infra.kafka import admin_client, client_config  # noqa: E402
from smarteros.models import OutboxEvent, ProcessedEvent  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.scope import dangerously_unscoped, tenant_scope  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WRITE_BATCH = 500
WRITERS = 2
WARM_UP = 2000  # events per path before the measured rounds (connections, caches, JIT-free warm)


@event_type("bench.ping")
class BenchPing(EventData):
    n: int


def payload(n: int) -> bytes:
    return Envelope(type="bench.ping", source="bench", tenant="bench", data={"n": n}).to_bytes()


class ConsumerProcess:
    """A consumer in a process of its own, as in production. It prints READY once it has joined
    its group, then `HANDLED <count> <unix time>` each time its count reaches a round's end."""

    def __init__(self, mode: str, topic: str, group: str, marks: list[int]) -> None:
        argv = [sys.executable, __file__, "--consume", mode, "--topic", topic, "--group", group]
        argv += ["--marks", ",".join(map(str, marks))]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def wait(self, prefix: str) -> list[str]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(prefix):
                return line.split()
        raise SystemExit(f"consumer exited before {prefix}")

    def handled_at(self, count: int) -> float:
        return float(self.wait(f"HANDLED {count} ")[2])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def run_consumer(mode: str, topic: str, group: str, marks: set[int]) -> None:
    handled = 0

    def count(n: int) -> None:
        nonlocal handled
        for _ in range(n):
            handled += 1
            if handled in marks:
                print(f"HANDLED {handled} {time.time()}", flush=True)

    if mode == "raw":
        consumer = Consumer(
            client_config(
                **{"group.id": group, "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
            )
        )
        consumer.subscribe([topic])
        consumer.poll(5)
        print("READY", flush=True)
        while True:
            # As GroupWorker does: wait for one message, then take what else has arrived.
            first = consumer.poll(0.5)
            if first is not None:
                rest = consumer.consume(num_messages=999, timeout=0)
                count(sum(1 for m in (first, *rest) if not m.error()))
    # As in production: the consumer group runs inside a Celery worker (its bootstep).
    from smarteros.celery import app

    handles(topic, "bench.ping", group=group)(lambda envelope: count(1))
    app.conf.worker_redirect_stdouts = False  # the HANDLED lines go to the parent as printed
    threading.Timer(4, lambda: print("READY", flush=True)).start()
    app.worker_main(
        [
            "worker",
            "--consumer-groups",
            group,
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{group}@%h",
        ]
    )


def raw_round(producer: Producer, topic: str, first: int, events: int) -> float:
    started = time.time()
    for n in range(first, first + events):
        producer.produce(topic, key=str(n % 97).encode(), value=payload(n))
        if n % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    return started


def outbox_round(tenant: Tenant, topic: str, first: int, events: int) -> float:
    def write(offset: int) -> None:
        # Writers run side by side, as request handlers do; each commits batches of WRITE_BATCH.
        start = first + offset * WRITE_BATCH
        for batch_first in range(start, first + events, WRITERS * WRITE_BATCH):
            batch = [
                (
                    topic,
                    Envelope(type="bench.ping", source="bench", tenant="bench", data={"n": n}),
                    str(n % 97),
                )
                for n in range(batch_first, min(batch_first + WRITE_BATCH, first + events))
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
    return started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per path")
    parser.add_argument("--consume", choices=["raw", "outbox"], help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--marks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        run_consumer(args.consume, args.topic, args.group, {int(m) for m in args.marks.split(",")})
        return

    run = uuid.uuid4().hex[:8]
    # "_" keeps them out of the running stack's every-topic subscription: deleting a topic a
    # consumer is fetching kills that process on the local broker (README, "The crash").
    raw_topic, outbox_topic = f"_bench.raw.{run}", f"_bench.outbox.{run}"
    admin = admin_client()
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=3, replication_factor=1) for t in (raw_topic, outbox_topic)]
    ).values():
        future.result()
    with dangerously_unscoped():
        tenant, _ = Tenant.objects.get_or_create(
            slug="bench", defaults={"name": "Bench", "status": "active"}
        )
    with connection.cursor() as cursor:
        # Earlier runs' deleted rows, as autovacuum would have cleared them on a live database.
        cursor.execute("VACUUM smarteros_outboxevent, smarteros_processedevent")
    sizes = [WARM_UP] + [args.events] * args.rounds
    marks = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    print(
        f"{args.rounds} rounds of {args.events} events of ~{len(payload(0))} bytes per path, "
        "alternating",
        flush=True,
    )

    raw_consumer = ConsumerProcess("raw", raw_topic, f"bench-raw-{run}", marks)
    outbox_consumer = ConsumerProcess("outbox", outbox_topic, f"bench-outbox-{run}", marks)
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "run_outbox_relay"], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    producer = Producer(
        client_config(**{"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    )
    rates: dict[str, list[float]] = {"raw": [], "outbox": []}
    try:
        raw_consumer.wait("READY")
        outbox_consumer.wait("READY")
        first = 0
        for i, (size, mark) in enumerate(zip(sizes, marks, strict=True)):
            started = raw_round(producer, raw_topic, first, size)
            raw = size / (raw_consumer.handled_at(mark) - started)
            started = outbox_round(tenant, outbox_topic, first, size)
            outbox = size / (outbox_consumer.handled_at(mark) - started)
            first += size
            if i == 0:
                continue  # warm-up
            rates["raw"].append(raw)
            rates["outbox"].append(outbox)
            print(f"  round {i}: raw {raw:,.0f}/s, outbox {outbox:,.0f}/s", flush=True)
    finally:
        for process in (raw_consumer, outbox_consumer):
            process.stop()
        relay.terminate()
        relay.wait(30)
        with dangerously_unscoped():
            OutboxEvent.objects.filter(topic=outbox_topic).delete()
            ProcessedEvent.objects.filter(group=f"bench-outbox-{run}").delete()
        for future in admin.delete_topics([raw_topic, outbox_topic]).values():
            future.result()
    raw, outbox = statistics.median(rates["raw"]), statistics.median(rates["outbox"])
    print(f"raw: {raw:,.0f} events/s")
    print(f"outbox: {outbox:,.0f} events/s")
    print(f"ratio: {outbox / raw:.2f}")


if __name__ == "__main__":
    main()
