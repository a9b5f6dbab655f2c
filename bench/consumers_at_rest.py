"""What the consumer groups cost at rest with many tenants' topics, and which librdkafka knob
lowers it: one process subscribes the worker's groups (their real topic lists and consumer
settings) on a broker of its own holding N tenants' topics; its CPU is measured over a quiet
window for each variant of the settings, and then how long an event takes to be consumed.

Usage: .venv/bin/python bench/consumers_at_rest.py [--tenants 200] [--seconds 60]
         [--variant NAME=JSON ...]      (DATABASE_URL: any database; only settings are read)
Each variant runs in a fresh process; its line says `% of one core` and the p50/max latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_VARIANTS = {
    "as shipped": {},
    "fetch.wait.max.ms=5000": {"fetch.wait.max.ms": 5000},
    "metadata refresh 300 s": {"topic.metadata.refresh.interval.ms": 300000},
}


def django_setup(bootstrap: str) -> None:
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")
    import django

    django.setup()


def group_topics(slugs: list[str]) -> dict[str, list[str]]:
    """The worker's consumer groups reading tenant topics, and their lists for `slugs`."""
    from smarteros.events.consumers import GroupWorker, registrations
    from telemetry.counter import GROUP, counted_topics

    regs = registrations()
    groups = {r.group for r in regs}
    lists = {g: GroupWorker(g, [r for r in regs if r.group == g]).topics(slugs) for g in groups}
    lists[GROUP] = counted_topics(slugs)
    return lists


def member(bootstrap: str, slugs: list[str], overrides: dict[str, Any], tag: str) -> None:
    """Child: the groups' consumers polling as the worker's loops do; prints each event's
    latency (sent in its value) as it arrives."""
    from confluent_kafka import Consumer

    from smarteros.events.consumers import tenant_consumer_config

    def loop(group: str, topics: list[str]) -> None:
        consumer = Consumer(tenant_consumer_config(f"{group}-{tag}", **overrides))
        consumer.subscribe(topics)
        while True:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                sent = float(message.value() or b"0")
                print(f"latency {group} {time.time() - sent:.3f}", flush=True)

    for group, topics in group_topics(slugs).items():
        threading.Thread(target=loop, args=(group, topics), daemon=True).start()
    print("started", flush=True)
    threading.Event().wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(args: argparse.Namespace, slugs: list[str], name: str, overrides: dict) -> str:
    from confluent_kafka import Producer

    from smarteros.infra.kafka import client_config

    child = subprocess.Popen(
        [
            *(sys.executable, __file__, "--member", json.dumps(overrides), "--kafka", args.kafka),
            *("--tenants", str(len(slugs)), "--prefix", args.prefix),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()
        time.sleep(args.settle)
        before, started = cpu_seconds(child.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu = (cpu_seconds(child.pid) - before) / (time.monotonic() - started) * 100
        producer = Producer(client_config())
        latencies = []
        for i in range(5):  # a topic only the topic counter and one flow group read
            producer.produce(
                f"{slugs[i * len(slugs) // 5]}.whatsapp.inbound", value=str(time.time()).encode()
            )
            producer.flush(10)
            # As the topic counter (the largest subscription) saw it.
            line = child.stdout.readline()
            while not line.startswith("latency topic-counter "):
                line = child.stdout.readline()
            latencies.append(float(line.split()[-1]))
            time.sleep(1)
        return (
            f"{name}: {cpu:.1f}% of one core over {args.seconds:.0f}s; latency p50 "
            f"{statistics.median(latencies):.2f}s max {max(latencies):.2f}s"
        )
    finally:
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka", help="a broker already holding the topics (default: start one)")
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--prefix", default="rest")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON overrides")
    parser.add_argument("--member", help=argparse.SUPPRESS)
    args = parser.parse_args()
    slugs = [f"{args.prefix}{i:04d}" for i in range(args.tenants)]
    if args.member is not None:
        django_setup(args.kafka)
        member(args.kafka, slugs, json.loads(args.member), uuid.uuid4().hex[:6])
        return
    broker = None
    if not args.kafka:
        from tests.processes import free_port, start_kafka_broker

        broker = start_kafka_broker(free_port())
        args.kafka = f"127.0.0.1:{broker.port}"
    django_setup(args.kafka)
    from smarteros.events.catalog import tenant_topics
    from smarteros.events.topics import topics_sync

    try:
        started = time.monotonic()
        for i in range(0, len(slugs), 10):
            topics_sync([spec for slug in slugs[i : i + 10] for spec in tenant_topics(slug)])
        print(f"{len(slugs)} tenants' topics in {time.monotonic() - started:.0f}s", flush=True)
        variants = dict(DEFAULT_VARIANTS)
        for spec in args.variant:
            name, _, raw = spec.partition("=")
            variants[name] = json.loads(raw)
        for name, overrides in variants.items():
            print(measure(args, slugs, name, overrides), flush=True)
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
