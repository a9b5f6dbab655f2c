"""Consumers under real faults: a PostgreSQL outage mid-stream (a cluster of the test's own,
stopped and restarted) pauses them and loses nothing; a dead letter the broker does not take
keeps the offset; an envelope naming another tenant than its topic's is refused; dead letters
are replayed through the outbox with their event ids."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.core.management import call_command

from smarteros.events.catalog import tenant_topics
from smarteros.events.consumers import GroupWorker, PermanentFailure, Registration, group_id
from smarteros.events.envelope import Envelope
from smarteros.events.outbox import relay_batch
from smarteros.events.tally import published_drain
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import client_config, forget_producers
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.conftest import wait_for
from tests.processes import ROOT, VENV_BIN
from tests.smarteros.backbone import read_all
from tests.smarteros.postgres_cluster import PostgresCluster

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def step(n: int, tenant: str | None = None) -> Envelope:
    return Envelope(
        type="tenant.provisioning.step",
        source="test",
        tenant=tenant,
        data={"step": f"s{n}", "outcome": "ok"},
    )


def produce(topic: str, values: list[bytes], key: bytes | None = None) -> None:
    producer = Producer(client_config())
    for value in values:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(10) == 0


@contextlib.contextmanager
def running(*workers: GroupWorker) -> Iterator[None]:
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)


def committed(group: str, topic: str, partition: int) -> int:
    consumer = Consumer(client_config(**{"group.id": group_id(group)}))
    try:
        return int(consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset)
    finally:
        consumer.close()


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    pg = PostgresCluster()
    try:
        pg.start()
        pg.create_application_database()
        yield pg
    finally:
        pg.remove()


def handled(pg: PostgresCluster) -> int:
    try:
        with psycopg.connect(pg.url, connect_timeout=2) as db:
            row = db.execute(
                "SELECT count(*) FROM smarteros_processedevent WHERE \"group\" = 'outage'"
            ).fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1


def test_a_database_outage_mid_stream_pauses_consumers_and_loses_nothing(
    broker: Any, cluster: PostgresCluster, settings: Any
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url,
        "DATABASE_PLATFORM_URL": cluster.platform_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "KAFKA_CONSUMER_GROUP_PREFIX": settings.KAFKA_CONSUMER_GROUP_PREFIX,
        "CONSUMER_MAX_BACKOFF_SECONDS": "2",
    }
    (ROOT / ".run" / "logs").mkdir(parents=True, exist_ok=True)
    log = open(ROOT / ".run" / "logs" / f"test-outage-consumer-{cluster.port}.log", "wb")  # noqa: SIM115
    consumer = subprocess.Popen(
        [str(VENV_BIN / "python"), "tests/smarteros/outage_consumer.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        produce("tenant.provisioning", [step(n).to_bytes() for n in range(40)])
        wait_for(lambda: handled(cluster) == 40, timeout=90, interval=0.5)
        cluster.stop()
        produce("tenant.provisioning", [step(n).to_bytes() for n in range(40, 100)])
        time.sleep(8)  # well past the handler's retries: before, these were dead-lettered
        assert consumer.poll() is None
        cluster.start()
        wait_for(lambda: handled(cluster) == 100, timeout=90, interval=0.5)
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)
        log.close()
    assert read_all("tenant.provisioning.dlq") == []
    assert "a dependency is down" in (ROOT / log.name).read_text()


def test_a_dead_letter_the_broker_does_not_take_keeps_the_offset(
    broker: Any, settings: Any
) -> None:
    handled_ids: list[str] = []
    group = "dlq-ack"
    worker = GroupWorker(
        group,
        [Registration("tenant.provisioning", "*", group, lambda e: handled_ids.append(e.id))],
        retry_delays=(0.05,),
        **FAST,
    )
    after = step(1)
    produce("tenant.provisioning", [b"x" * 19_990, after.to_bytes()], key=b"same-partition")
    partition = read_all("tenant.provisioning", 2)[0].partition()
    # The dead letter (the message plus its headers) is over what this client may send.
    settings.KAFKA_CLIENT_CONFIG = "message.max.bytes=20000"
    forget_producers()
    with running(worker):
        time.sleep(10)
        assert committed(group, "tenant.provisioning", partition) < 0  # nothing committed
        assert handled_ids == [] and read_all("tenant.provisioning.dlq") == []
        settings.KAFKA_CLIENT_CONFIG = ""  # the cause fixed: the next attempt goes through
        forget_producers()
        wait_for(lambda: handled_ids == [after.id], timeout=30)
        wait_for(lambda: committed(group, "tenant.provisioning", partition) == 2, timeout=30)
    dead = read_all("tenant.provisioning.dlq", 1)
    assert len(dead) == 1 and dict(dead[0].headers())["dlq.reason"].startswith(b"invalid event")


def test_an_envelope_naming_another_tenant_than_its_topic_is_refused_and_replayed_by_id(
    broker: Any, make_tenant: Any
) -> None:
    acme = make_tenant(f"acme{secrets.token_hex(2)}").tenant
    topics_sync(tenant_topics(acme.slug))
    topic = f"{acme.slug}.n8n.automation.result"
    result = {"whatsapp_to": "+14155550100", "whatsapp_text": "hi"}

    def envelope(tenant: str) -> Envelope:
        return Envelope(type="n8n.workflow.result", source="t", tenant=tenant, data=result)

    own, foreign, flaky = envelope(acme.slug), envelope("globex"), envelope(acme.slug)
    seen: list[tuple[str, str | None]] = []
    broken = {flaky.id}

    def record(e: Envelope) -> None:
        if e.id in broken:
            raise PermanentFailure("not yet")
        seen.append((e.id, e.tenant))

    group = "tenant-check"
    worker = GroupWorker(
        group, [Registration("*.n8n.automation.result", "*", group, record)], **FAST
    )
    produce(topic, [own.to_bytes(), foreign.to_bytes(), flaky.to_bytes()], key=b"k")
    with running(worker):
        dead = read_all(f"{topic}.dlq", 2)
        # Created by its first dead letter, and counted where they were parked.
        parked = published_drain()
        assert sum(n for (_, slug, name), n in parked.items() if name == f"{topic}.dlq") == 2
        wait_for(lambda: (own.id, acme.slug) in seen, timeout=30)
        reasons = {json.loads(m.value())["id"]: dict(m.headers())["dlq.reason"] for m in dead}
        assert b"'globex' is not" in reasons[foreign.id]
        assert reasons[flaky.id].endswith(b"not yet")

        broken.clear()  # the cause fixed: replay what this tenant's topic dead-lettered
        call_command("dlq", "replay", "--tenant", acme.slug, "--topic", "n8n.automation.result")
        with dangerously_unscoped():
            requeued = [str(i) for i in OutboxEvent.objects.values_list("event_id", flat=True)]
        assert requeued == [flaky.id]  # the same event id; the foreign one is not this tenant's
        assert relay_batch(flush_timeout=5) == 1
        wait_for(lambda: (flaky.id, acme.slug) in seen, timeout=30)
    again, listing = io.StringIO(), io.StringIO()
    args = ["--tenant", acme.slug, "--topic", "n8n.automation.result"]
    call_command("dlq", "replay", *args, stdout=again)
    assert "0 event(s) re-queued" in again.getvalue()  # each dead letter is replayed once
    call_command("dlq", "list", *args, stdout=listing)
    lines = listing.getvalue().splitlines()
    assert lines[-1] == "2 dead letter(s)" and all(" replayed: " in line for line in lines[:2])
    assert any(flaky.id in line and "not yet" in line for line in lines)
    # The foreign one never ran (a list is no transaction: a batch that failed left its entries).
    assert set(seen) == {(own.id, acme.slug), (flaky.id, acme.slug)}
