"""Consumer groups' lag and last progress on /readyz: a stalled group turns it degraded, naming the
group, on a real broker with real consumers."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from django.test import Client

from smarteros.events import progress
from smarteros.events.consumers import GroupWorker, Registration, group_id
from smarteros.events.envelope import Envelope
from smarteros.infra.kafka import client_config
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def produce(topic: str, count: int) -> None:
    producer = Producer(client_config())
    for n in range(count):
        envelope = Envelope(
            type="tenant.provisioning.step", source="test", data={"step": f"s{n}", "outcome": "ok"}
        )
        producer.produce(topic, value=envelope.to_bytes())
    assert producer.flush(10) == 0


def readyz() -> dict[str, Any]:
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def quick(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CONSUMER_GROUP_STALL_SECONDS = 3
    monkeypatch.setattr(progress, "REPORT_SECONDS", 0.3)


def test_a_group_whose_handler_hangs_turns_readyz_degraded_naming_it(
    broker: Any, quick: None
) -> None:
    handled: list[str] = []
    release = threading.Event()
    healthy = GroupWorker(
        "progress-healthy",
        [Registration("smarteros.events", "*", "progress-healthy", lambda e: handled.append(e.id))],
        **FAST,
    )
    hanging = GroupWorker(
        "progress-hanging",
        [Registration("smarteros.events", "*", "progress-hanging", lambda e: release.wait(60))],
        **FAST,
    )
    threads = [threading.Thread(target=w.run, daemon=True) for w in (healthy, hanging)]
    for thread in threads:
        thread.start()
    try:
        produce("smarteros.events", 3)
        wait_for(lambda: len(handled) == 3, timeout=60)
        body = wait_for(
            lambda: (
                (b := readyz())["status"] == "degraded"
                and "progress-hanging" in str(b["degraded"])
                and b
            ),
            timeout=60,
        )
        assert [d for d in body["degraded"] if d.startswith("consumer group")] == [
            "consumer group progress-hanging: stalled: "
            + body["consumer_groups"]["progress-hanging"]["stalled"]
        ]
        assert "has not reported" in body["consumer_groups"]["progress-hanging"]["stalled"]
        assert body["consumer_groups"]["progress-healthy"]["lag"] == 0
        assert body["consumer_groups"]["progress-healthy"]["stalled"] == ""
    finally:
        release.set()
        for worker in (healthy, hanging):
            worker.stop()
        for thread in threads:
            thread.join(30)
    # Stopped cleanly once its handler returned: no group is stalled any more.
    assert not [d for d in readyz()["degraded"] if d.startswith("consumer group")]


def test_a_member_with_lag_that_handles_nothing_is_stalled(broker: Any, quick: None) -> None:
    readyz()  # the first request loads the URL conf and apps: slower than a member's report
    topic = "smarteros.events"
    produce(topic, 5)
    group = f"progress-lag-{secrets.token_hex(3)}"
    consumer = Consumer(
        client_config(**{"group.id": group_id(group), "auto.offset.reset": "earliest", **FAST})
    )
    consumer.subscribe([topic])
    member = progress.GroupProgress(consumer, group)
    # It takes one message and then handles nothing more: 4 behind, no progress.
    wait_for(lambda: consumer.consume(num_messages=1, timeout=0.5), timeout=30)
    stop = threading.Event()

    def loop() -> None:  # as a consumer's loop does: it reports, but handles nothing
        while not stop.is_set():
            member.tick()
            stop.wait(0.1)

    ticking = threading.Thread(target=loop, daemon=True)
    ticking.start()
    try:

        def stalled_reason() -> str:
            return str(readyz()["consumer_groups"].get(group, {}).get("stalled") or "")

        # Stalled as soon as it has lag and no progress; its lag reaches 4 once the client has
        # every partition's watermark (fetched in the background, partition by partition).
        reason = wait_for(
            lambda: stalled_reason().startswith("lag 4") and stalled_reason(), timeout=30
        )
        assert reason.startswith("lag 4, nothing handled for ")
        assert f"consumer group {group}: stalled: lag 4" in " ".join(readyz()["degraded"])
    finally:
        stop.set()
        ticking.join(5)
        member.close()
        consumer.close()
    assert group not in readyz()["consumer_groups"]  # a member that stopped cleanly is gone
