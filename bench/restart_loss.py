"""A restart of `make run` loses no message: per-topic counts before a Ctrl-C and after the next
start are compared, and `lost: N` printed (the sum of every topic's shortfall).

Run it with the environment of the `make run` it measures (SMARTEROS_RUN_DIR, the SMARTEROS_*
ports, DATABASE_URL): it sends that stack's supervisor the signal of a Ctrl-C, times the stop,
starts `scripts/devstack.py run` again in the background (its output in the run folder's
logs/restart_loss.log; it keeps running after this script) and times it until /readyz answers.
`--tenants N` first adds tenants (rows and topics) until there are N `bench-*` tenants and puts
`--messages` records on each one's topics, and on the dead-letter topics of every tenth one (a
tenant's dead-letter topics exist once it had a dead letter).

Usage: .venv/bin/python bench/restart_loss.py [--tenants 1000] [--messages 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")
RUN_DIR = Path(os.environ.get("SMARTEROS_RUN_DIR") or ROOT / ".run").resolve()
WEB_PORT = int(os.environ.get("SMARTEROS_WEB_PORT", "8000"))
KAFKA_PORT = int(os.environ.get("SMARTEROS_KAFKA_PORT", "9092"))
os.environ["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{KAFKA_PORT}"

import django  # noqa: E402

django.setup()

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402

from smarteros.events.backup import scan_partitions_parallel  # noqa: E402
from smarteros.events.backup_generations import high_water_marks  # noqa: E402
from smarteros.events.catalog import tenant_dead_letter_topics, tenant_topics  # noqa: E402
from smarteros.infra.kafka import admin_client, topics_create  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.scope import dangerously_unscoped  # noqa: E402


def say(line: str) -> None:
    print(f"[restart_loss] {line}", flush=True)


def seed(tenants: int, messages: int) -> None:
    """Tenants `bench-0000`... up to `tenants`, their topics, and `messages` records on each
    of their topics (and on the dead-letter topics of every tenth)."""
    slugs = [f"bench-{n:04d}" for n in range(tenants)]
    with dangerously_unscoped():
        have = set(Tenant.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        Tenant.objects.bulk_create(
            [
                Tenant(slug=slug, name=f"Bench {slug}", status=Tenant.Status.ACTIVE)
                for slug in slugs
                if slug not in have
            ]
        )

    def topics_of(number: int, slug: str) -> list[Any]:
        return tenant_topics(slug) + (tenant_dead_letter_topics(slug) if number % 10 == 0 else [])

    specs = [
        spec for n, slug in enumerate(slugs) if slug not in have for spec in topics_of(n, slug)
    ]
    started = time.monotonic()
    topics_create(
        admin_client(),
        [
            NewTopic(s.name, s.partitions, settings.KAFKA_REPLICATION_FACTOR, config=s.config())
            for s in specs
        ],
        progress=say,
    )
    say(
        f"{len(slugs) - len(have)} tenants added, {len(specs)} topics in {time.monotonic() - started:.1f}s"
    )
    producer = Producer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    names = [spec.name for n, slug in enumerate(slugs) for spec in topics_of(n, slug)]
    for name in names:
        for n in range(messages):
            producer.produce(name, key=f"k{n}".encode(), value=b'{"bench": true}')
            producer.poll(0)
    assert producer.flush(600) == 0, "the broker did not acknowledge every record"
    say(f"{len(names) * messages} records written on {len(names)} topics")


def counts() -> dict[str, int]:
    """Records per topic (every non-internal topic), by reading the partitions that hold any."""
    admin = admin_client()
    metadata = admin.list_topics(timeout=60)
    every = [
        (t, p)
        for t, info in metadata.topics.items()
        if not t.startswith("__")
        for p in info.partitions
    ]
    marks = high_water_marks(admin, every)
    holding = [tp for tp in every if marks[f"{tp[0]}:{tp[1]}"]]
    found = dict.fromkeys((t for t, _ in every), 0)
    lock = threading.Lock()

    def count(message: Any) -> None:
        with lock:
            found[message.topic()] += 1

    scan_partitions_parallel(os.environ["KAFKA_BOOTSTRAP_SERVERS"], holding, on_message=count)
    return found


def readiness() -> str:
    """/readyz's status ("ready", "degraded"...), or "" while it does not answer 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{WEB_PORT}/readyz", timeout=10) as answer:
            body = json.load(answer)
    except (OSError, ValueError):
        return ""
    return f"{body['status']} {body.get('degraded') or ''}".strip()


def restart() -> tuple[float, float]:
    """Ctrl-C the running stack, start it again; (seconds to stop, seconds until ready)."""
    pid = int((RUN_DIR / "devstack.pid").read_text())
    started = time.monotonic()
    os.kill(pid, signal.SIGINT)
    while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
        time.sleep(0.2)
    stopped = time.monotonic() - started
    say(f"stopped in {stopped:.1f}s")
    log = RUN_DIR / "logs" / "restart_loss.log"
    started = time.monotonic()
    with log.open("ab") as output:
        subprocess.Popen(
            [sys.executable, "scripts/devstack.py", "run"],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    while not (status := readiness()):
        time.sleep(1)
    say(f"/readyz: {status}")
    return stopped, time.monotonic() - started


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=0)
    parser.add_argument("--messages", type=int, default=4)
    args = parser.parse_args()
    if args.tenants:
        seed(args.tenants, args.messages)
    before = counts()
    say(f"{sum(before.values())} records in {len(before)} topics before the restart")
    stopped, up = restart()
    say(f"/readyz answered {up:.1f}s after the start")
    after = counts()
    say(f"{sum(after.values())} records in {len(after)} topics after the restart")
    short = {t: n - after.get(t, 0) for t, n in before.items() if after.get(t, 0) < n}
    for topic, missing in sorted(short.items(), key=lambda item: -item[1])[:20]:
        say(f"{topic}: {missing} of {before[topic]} missing")
    print(json.dumps({"stop_seconds": round(stopped, 1), "ready_seconds": round(up, 1)}))
    print(f"lost: {sum(short.values())}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
