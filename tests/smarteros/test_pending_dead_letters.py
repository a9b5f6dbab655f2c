"""While a consumer group retries a failing event it is listed as a pending dead letter of its
tenant (attempt n of N, the last error scrubbed, when the next attempt is due); it leaves the list
once it is dead-lettered or handled. A crashed member's entries expire; one tenant's list never
holds another's; with Redis down the group consumes as before."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smarteros.events import pending
from smarteros.events.catalog import tenant_topics
from smarteros.events.consumers import GroupWorker, Registration
from smarteros.events.envelope import Envelope
from smarteros.events.pending import PendingRetry, pending_dead_letters
from smarteros.events.subscriptions import tenant_directory
from smarteros.events.topics import topics_sync
from smarteros.infra.kafka import client_config
from smarteros.infra.redis import get_redis
from tests.conftest import wait_for
from tests.smarteros.backbone import read_all

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
SECRET = "Bearer abcdefghijklmnop1234"


@pytest.fixture(autouse=True)
def redis_as_configured() -> Iterator[None]:
    """Each test starts with Redis tried (no quiet period left by another) and ends so."""
    pending._quiet_until = 0.0
    yield
    get_redis.cache_clear()
    pending._quiet_until = 0.0


@contextlib.contextmanager
def running(worker: GroupWorker) -> Iterator[None]:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join(timeout=30)


def result(slug: str, text: str) -> Envelope:
    data = {"whatsapp_to": "+14155550100", "whatsapp_text": text}
    return Envelope(type="n8n.workflow.result", source="test", tenant=slug, data=data)


def produce(topic: str, envelope: Envelope) -> tuple[int, int]:
    """Produce `envelope` and wait for the broker: its partition and offset."""
    from confluent_kafka import Producer

    where: list[tuple[int, int]] = []
    producer = Producer(client_config())
    producer.produce(
        topic,
        value=envelope.to_bytes(),
        key=b"k",
        on_delivery=lambda err, msg: where.append((msg.partition(), msg.offset())),
    )
    assert producer.flush(10) == 0
    return where[0]


def tenant_with_topics(make_tenant: Callable[..., Any], name: str) -> str:
    slug = f"{name}{secrets.token_hex(3)}"  # the consumers remember slugs' ids for a minute
    make_tenant(slug)
    topics_sync(tenant_topics(slug))
    return slug


def failing_worker(
    group: str, fails: Callable[[Envelope], bool], delays: tuple[float, ...]
) -> GroupWorker:
    def handler(envelope: Envelope) -> None:
        if fails(envelope):
            raise RuntimeError(f"n8n answered 502 to {SECRET}")

    return GroupWorker(
        group,
        [Registration("*.n8n.automation.result", "*", group, handler)],
        retry_delays=delays,
        **FAST,
    )


def test_an_event_being_retried_is_pending_until_it_is_dead_lettered(
    broker: Any, make_tenant: Callable[..., Any]
) -> None:
    slug = tenant_with_topics(make_tenant, "acme")
    topic = f"{slug}.n8n.automation.result"
    event = result(slug, "hello")
    worker = failing_worker("pending-dlq", lambda e: True, (3.0, 3.0))
    partition, offset = produce(topic, event)
    with running(worker):
        entries = wait_for(lambda: pending_dead_letters(tenant_slug=slug, topic=topic), timeout=30)
        (entry,) = entries
        assert (entry.topic, entry.partition, entry.offset) == (topic, partition, offset)
        assert (entry.event_id, entry.event_type) == (event.id, "n8n.workflow.result")
        assert (entry.group, entry.attempt, entry.attempts) == ("pending-dlq", 1, 3)
        assert entry.error.startswith("handler: RuntimeError: n8n answered 502 to Bearer ")
        assert "abcdefghijklmnop1234" not in entry.error  # scrubbed before it reached Redis
        assert 0 < entry.due_in() <= 3.0
        wait_for(
            lambda: [e.attempt for e in pending_dead_letters(tenant_slug=slug, topic=topic)] == [2],
            timeout=10,
        )
        dead = read_all(f"{topic}.dlq", 1)
        assert len(dead) == 1
        wait_for(lambda: pending_dead_letters(tenant_slug=slug, topic=topic) == [], timeout=10)
    assert get_redis().hgetall(pending._key(slug)) == {}


def test_an_event_that_succeeds_on_a_retry_leaves_the_pending_list(
    broker: Any, make_tenant: Callable[..., Any]
) -> None:
    slug = tenant_with_topics(make_tenant, "acme")
    topic = f"{slug}.n8n.automation.result"
    attempts: list[str] = []

    def fails_once(envelope: Envelope) -> bool:
        attempts.append(envelope.id)
        return len(attempts) == 1

    worker = failing_worker("pending-ok", fails_once, (2.0,))
    produce(topic, result(slug, "hello"))
    with running(worker):
        wait_for(lambda: pending_dead_letters(tenant_slug=slug, topic=topic), timeout=30)
        wait_for(lambda: len(attempts) == 2, timeout=10)
        wait_for(lambda: pending_dead_letters(tenant_slug=slug, topic=topic) == [], timeout=10)
    assert read_all(f"{topic}.dlq") == []


def test_an_event_handled_at_once_costs_no_redis_call(
    broker: Any, make_tenant: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    slug = tenant_with_topics(make_tenant, "acme")
    topic = f"{slug}.n8n.automation.result"
    calls: list[str] = []
    monkeypatch.setattr(pending, "get_redis", lambda: calls.append("redis"))
    handled: list[str] = []
    group = "pending-none"
    worker = GroupWorker(
        group,
        [Registration("*.n8n.automation.result", "*", group, lambda e: handled.append(e.id))],
        **FAST,
    )
    event = result(slug, "hello")
    produce(topic, event)
    with running(worker):
        wait_for(lambda: handled == [event.id], timeout=30)
    assert calls == []


def test_a_tenant_reads_only_its_own_pending_entries(make_tenant: Callable[..., Any]) -> None:
    acme, globex = f"acme{secrets.token_hex(3)}", f"globex{secrets.token_hex(3)}"
    for slug in (acme, globex):
        entry = PendingRetry(
            group="flows",
            topic=f"{slug}.n8n.automation.result",
            partition=0,
            offset=7,
            event_id=f"id-{slug}",
            event_type="n8n.workflow.result",
            attempts=4,
        )
        entry.failed(attempt=1, error="boom", delay=30)
    try:
        mine = pending_dead_letters(tenant_slug=acme, topic=f"{acme}.n8n.automation.result")
        assert [e.event_id for e in mine] == [f"id-{acme}"]
        # Asking acme's hash for globex's topic, or globex's for acme's, finds nothing.
        assert pending_dead_letters(tenant_slug=acme, topic=f"{globex}.n8n.automation.result") == []
        assert pending_dead_letters(tenant_slug=globex, topic=f"{acme}.n8n.automation.result") == []
        # Another topic of the same tenant has its own list.
        assert pending_dead_letters(tenant_slug=acme, topic=f"{acme}.shopify.webhooks") == []
    finally:
        get_redis().delete(pending._key(acme), pending._key(globex))


def test_a_crashed_members_entry_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    slug = f"acme{secrets.token_hex(3)}"
    topic = f"{slug}.shopify.webhooks"
    monkeypatch.setattr(pending, "MIN_MARGIN_SECONDS", 0.5)
    entry = PendingRetry(
        group="flows",
        topic=topic,
        partition=1,
        offset=3,
        event_id="gone",
        event_type="shopify.webhook.received",
        attempts=4,
    )
    entry.failed(attempt=2, error="boom", delay=0.2)  # then the member dies: nobody clears it
    assert [e.event_id for e in pending_dead_letters(tenant_slug=slug, topic=topic)] == ["gone"]
    ttl = get_redis().ttl(pending._key(slug))
    assert 0 < ttl <= 2  # the hash goes by itself once nobody writes to it
    time.sleep(1.0)
    assert pending_dead_letters(tenant_slug=slug, topic=topic) == []
    assert get_redis().hgetall(pending._key(slug)) == {}  # the reader deleted it


def test_with_redis_down_the_group_retries_and_dead_letters_as_before(
    broker: Any, make_tenant: Callable[..., Any], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    slug = tenant_with_topics(make_tenant, "acme")
    tenant_directory().snapshot(fresh=True)  # knows the tenant, then keeps that view
    settings.REDIS_URL = f"redis://127.0.0.1:{closed}/0"
    get_redis.cache_clear()
    topic = f"{slug}.n8n.automation.result"
    worker = failing_worker("pending-noredis", lambda e: True, (0.1, 0.1))
    produce(topic, result(slug, "hello"))
    with caplog.at_level("DEBUG", logger="smarteros.events.pending"), running(worker):
        assert len(read_all(f"{topic}.dlq", 1)) == 1
    assert any("pending dead letters:" in r.getMessage() for r in caplog.records)
    assert all(r.levelname == "DEBUG" for r in caplog.records if r.name == pending.log.name)
