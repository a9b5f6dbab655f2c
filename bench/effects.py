"""Outside effects end to end: an event on Kafka -> a consumer group in a Celery worker records
the effect -> a Celery task performs it at the provider (a WhatsApp send at the loopback
stand-in), vs the same number of processes calling the stand-in directly. Target: at least 0.5x.

The effects path's clock starts with the first event's write to the outbox and stops when the
stand-in has applied the round's last send. The direct path's starts when its processes are told
to go and stops at its last send. Rounds alternate; medians are compared.

Usage: .venv/bin/python bench/effects.py [--effects N] [--processes P] [--rounds R]
(needs the local stack: make up)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smarteros.settings")
os.environ.setdefault("EGRESS_ALLOWED_NETWORKS", "127.0.0.1/32")  # the SaaS stand-ins

import django

django.setup()

from confluent_kafka import KafkaException  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from effects.models import Effect  # noqa: E402
from integrations.services import integration_connect  # noqa: E402
from integrations.whatsapp.client import WhatsAppClient  # noqa: E402
from smarteros.events.catalog import tenant_topics  # noqa: E402
from smarteros.events.envelope import Envelope  # noqa: E402
from smarteros.events.outbox import outbox_emit_many  # noqa: E402
from smarteros.events.topics import topics_sync  # noqa: E402
from smarteros.infra.kafka import admin_client  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.scope import dangerously_unscoped, tenant_scope  # noqa: E402
from tests.fixtures.saas import LLM_KEY, WHATSAPP_TOKEN, SaasServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WRITE_BATCH = 500
GROUP = "flow-n8n-whatsapp"


def direct_sender(base_url: str, count: int) -> None:
    """One direct process: wait for GO, then send `count` messages as the effect would."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = WhatsAppClient(phone_number_id="123", access_token=WHATSAPP_TOKEN, base_url=base_url)
    print("READY", flush=True)
    sys.stdin.readline()
    for _ in range(count):
        client.send_text(to="+14155550100", body="direct", idempotency_key=uuid.uuid4().hex)
    print("DONE", flush=True)


def wait_applied(saas: SaasServer, target: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while len(saas.state.applied) < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(saas.state.applied)} of {target} effects arrived")
        time.sleep(0.002)
    return time.time()


def effects_round(saas: SaasServer, tenant: Tenant, first: int, count: int) -> float:
    target = len(saas.state.applied) + count
    started = time.time()
    for start in range(first, first + count, WRITE_BATCH):
        batch = [
            (
                f"{tenant.slug}.n8n.automation.result",
                Envelope(
                    type="n8n.workflow.result",
                    source="bench",
                    tenant=tenant.slug,
                    data={"whatsapp_to": "+14155550100", "whatsapp_text": f"msg {n}"},
                ),
                str(n % 97),
            )
            for n in range(start, min(start + WRITE_BATCH, first + count))
        ]
        with tenant_scope(tenant.pk):
            outbox_emit_many(batch, tenant_id=tenant.pk)
    ended = wait_applied(saas, target)
    with dangerously_unscoped():
        spans = Effect.objects.filter(tenant=tenant).aggregate(
            first=Min("created_at"), recorded=Max("created_at"), done=Max("done_at")
        )
        Effect.objects.filter(tenant=tenant).delete()
    print(
        f"    recorded {spans['first'].timestamp() - started:.2f}s to "
        f"{spans['recorded'].timestamp() - started:.2f}s, done by "
        f"{spans['done'].timestamp() - started:.2f}s, at the stand-in by {ended - started:.2f}s",
        flush=True,
    )
    return count / (ended - started)


def direct_round(saas: SaasServer, processes: int, count: int) -> float:
    target = len(saas.state.applied) + count
    senders = [
        subprocess.Popen(
            [sys.executable, __file__, "--direct", saas.url, str(count // processes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for sender in senders:
        assert sender.stdout is not None and sender.stdout.readline().startswith("READY")
    started = time.time()
    for sender in senders:
        assert sender.stdin is not None
        sender.stdin.write("GO\n")
        sender.stdin.flush()
    ended = wait_applied(saas, target)
    for sender in senders:
        sender.wait(60)
    return count / (ended - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--effects", type=int, default=2000, help="effects per round")
    parser.add_argument("--processes", type=int, default=4, help="worker / sender processes")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per path")
    parser.add_argument("--direct", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct:
        direct_sender(args.direct[0], int(args.direct[1]))
        return
    count = args.effects - args.effects % args.processes
    run = uuid.uuid4().hex[:6]
    saas = SaasServer().__enter__()
    with dangerously_unscoped():
        tenant = Tenant.objects.create(slug=f"bfx{run}", name="Bench effects", status="active")
    topics_sync(tenant_topics(tenant.slug))
    integration_connect(
        tenant=tenant,
        provider="whatsapp",
        config={"phone_number_id": "123", "api_base_url": saas.url, "llm_base_url": saas.url},
        credentials={"access_token": WHATSAPP_TOKEN, "llm_api_key": LLM_KEY},
    )
    env = {**os.environ, "KAFKA_CONSUMER_GROUP_PREFIX": f"bench{run}"}
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "run_outbox_relay"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (ROOT / ".run" / "logs").mkdir(parents=True, exist_ok=True)
    worker_log = open(ROOT / ".run" / "logs" / "bench-effects-worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "smarteros",
            "worker",
            "--consumer-groups",
            GROUP,
            "--concurrency",
            str(args.processes),
            "--loglevel",
            "INFO",
            "-n",
            f"bench{run}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    print(
        f"{args.rounds} rounds of {count} effects per path, {args.processes} processes, "
        f"broker {settings.KAFKA_BOOTSTRAP_SERVERS}",
        flush=True,
    )
    rates: dict[str, list[float]] = {"effects": [], "direct": []}
    try:
        first = 0
        for i in range(args.rounds + 1):
            size = count if i else min(count, 200)  # round 0 warms up (and waits for the group)
            effects = effects_round(saas, tenant, first, size)
            first += size
            direct = direct_round(saas, args.processes, size)
            if i == 0:
                continue
            rates["effects"].append(effects)
            rates["direct"].append(direct)
            print(f"  round {i}: effects {effects:,.0f}/s, direct {direct:,.0f}/s", flush=True)
    finally:
        worker.terminate()
        relay.terminate()
        worker.wait(60)
        relay.wait(60)
        admin = admin_client()  # held: its futures fail once it is collected
        names = [spec.name for spec in tenant_topics(tenant.slug)]
        for future in admin.delete_topics(names, operation_timeout=30).values():
            try:
                future.result()
            except KafkaException as exc:  # cleanup only; the figures stand
                print(f"  (could not delete a bench topic: {exc})", file=sys.stderr)
        with dangerously_unscoped():
            tenant.delete()
        saas.__exit__()
    effects, direct = statistics.median(rates["effects"]), statistics.median(rates["direct"])
    print(f"effects: {effects:,.0f}/s end to end (event -> effect at the stand-in)")
    print(f"direct: {direct:,.0f}/s")
    print(f"ratio: {effects / direct:.2f}")


if __name__ == "__main__":
    main()
