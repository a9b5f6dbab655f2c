"""Celery workers consuming Kafka and performing effects, killed with SIGKILL at random points:
every effect still happens exactly once at the provider, and none is missing."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest

from effects.models import Effect
from effects.services import effects_requeue_lost
from integrations.models import WhatsAppMessage
from smarteros.events import outbox
from smarteros.events.catalog import tenant_topics
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import relay_batch
from smarteros.events.topics import topics_sync
from smarteros.models import ProcessedEvent
from tenants.scope import dangerously_unscoped, tenant_scope
from tests.conftest import wait_for
from tests.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = "flow-n8n-whatsapp"
ROUNDS, PER_ROUND = 4, 60


def emit_results(tenant: Any, first: int, count: int) -> None:
    with tenant_scope(tenant.pk):
        for i in range(first, first + count):
            outbox.outbox_emit(
                topic=f"{tenant.slug}.n8n.automation.result",
                key=f"k{i % 7}",
                tenant_id=tenant.pk,
                envelope=Envelope(
                    type="n8n.workflow.result",
                    source="test",
                    tenant=tenant.slug,
                    data={"whatsapp_to": "+14155550100", "whatsapp_text": f"msg {i}"},
                ),
            )
    while relay_batch(flush_timeout=5):
        pass


def start_worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = open(ROOT / ".run" / "logs" / f"test-celery-{name}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
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
            "4",
            "--loglevel",
            "INFO",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes the pool's children too
    )


def sent_texts(saas: Any) -> list[str]:
    return [body["text"]["body"] for _, body in saas.state.applied_of("whatsapp")]


def test_sigkilled_workers_neither_repeat_nor_drop_an_effect(
    broker: Any,
    make_tenant: Any,
    connect: Any,
    saas: Any,
    server_env: dict[str, str],
    settings: Any,
) -> None:
    from smarteros.celery import app

    app.conf.task_always_eager = False  # the workers perform the effects; this test only watches
    tenant = make_tenant(f"kill{random.randrange(10**6)}").tenant
    topics_sync(tenant_topics(tenant.slug))
    connect(tenant, "whatsapp", saas.url)
    connect(tenant, "n8n", saas.url)  # results come from n8n: the flow reads connected tenants'
    saas.state.write_delay = 0.02  # effects take a while, so kills land among them
    env = {
        **server_env,
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "KAFKA_CONSUMER_GROUP_PREFIX": settings.KAFKA_CONSUMER_GROUP_PREFIX,
        "EFFECT_LEASE_SECONDS": "3",
        "EFFECT_RETRY_DELAYS": "0.5,1,2",
    }
    (ROOT / ".run" / "logs").mkdir(parents=True, exist_ok=True)
    total, killed_midway = 0, 0
    for round_ in range(ROUNDS):
        emit_results(tenant, total, PER_ROUND)
        total += PER_ROUND
        before = len(sent_texts(saas))
        worker = start_worker(env, f"kill{round_}")
        # Kill once a random number of this round's effects went out (or at a random time).
        goal = before + random.randint(1, PER_ROUND - 1)
        deadline = time.monotonic() + random.uniform(8, 20)
        while len(sent_texts(saas)) < goal and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if len(sent_texts(saas)) < total:
            killed_midway += 1
    assert killed_midway >= 2, "the kills should land while effects are still to do"

    final = start_worker(env, "final")
    try:
        with dangerously_unscoped():
            wait_for(
                lambda: ProcessedEvent.objects.filter(group__endswith=GROUP).count() == total,
                timeout=120,
            )

        def all_done() -> bool:
            # What the dead workers held or never enqueued comes back through the requeue task.
            effects_requeue_lost(older_than=timedelta(seconds=1))
            with dangerously_unscoped():
                return Effect.objects.filter(tenant=tenant, state="done").count() == total

        wait_for(all_done, timeout=120, interval=1)
    finally:
        final.send_signal(signal.SIGTERM)
        final.wait(60)
        app.conf.task_always_eager = True

    counts = collections.Counter(sent_texts(saas))
    assert set(counts) == {f"msg {i}" for i in range(total)}  # none missing
    assert [text for text, n in counts.items() if n != 1] == []  # none twice
    with dangerously_unscoped():
        assert Effect.objects.filter(tenant=tenant).count() == total
        outbound = WhatsAppMessage.objects.filter(tenant=tenant, direction="outbound")
        assert outbound.count() == total  # each recorded once, with its wamid
        assert outbound.values("provider_message_id").distinct().count() == total
