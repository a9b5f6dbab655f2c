"""Topics page, message detail, dead-letter replay and export through the console's HTTP views."""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.conf import settings

from telemetry.topics.access import TopicGrant
from telemetry.topics.published import topics_published
from tenants.models import AuditEvent
from tenants.scope import dangerously_unscoped
from tests.telemetry.topics.conftest import envelope, produce

pytestmark = pytest.mark.django_db(transaction=True)

DLQ = "acme.shopify.webhooks.dlq"
ORIGIN = "acme.shopify.webhooks"


def dead_letter(value: Any, origin: str = ORIGIN) -> None:
    produce(
        DLQ,
        value,
        key="order-9",
        headers=[
            ("dlq.reason", b"PermanentFailure: total missing"),
            ("dlq.topic", origin.encode()),
            ("dlq.partition", b"1"),
            ("dlq.offset", b"42"),
            ("event-type", b"shopify.webhook.received"),
        ],
    )


def read_all(topic: str) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": "t"})
    try:
        messages: list[Any] = []
        for p in range(3):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
            if high > low:
                consumer.assign([TopicPartition(topic, p, low)])
                while len([m for m in messages if m.partition() == p]) < high - low:
                    message = consumer.poll(1)
                    if message is not None and not message.error():
                        messages.append(message)
        return messages
    finally:
        consumer.close()


def audits(action: str) -> list[AuditEvent]:
    with dangerously_unscoped():
        return list(AuditEvent.objects.filter(action=action))


def counted(tenant: str, topic: str, messages: int, minutes_ago: int = 0) -> None:
    """Messages counted on a topic, as the places that publish them and the counter write it."""
    from datetime import UTC, datetime, timedelta

    from smarteros.infra.clickhouse import clickhouse_client

    minute = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    client = clickhouse_client()
    try:
        client.execute(
            "INSERT INTO topic_messages (minute, tenant, topic, messages) VALUES",
            [(minute - timedelta(minutes=minutes_ago), tenant, topic, messages)],
        )
    finally:
        client.disconnect()


def test_topics_page_lists_counts_retention_and_degrades_without_groups(world: Any) -> None:
    produce(ORIGIN, {"n": 1}, partition=0)
    # The counts are the platform's records of the last 24 hours, not the broker's watermarks
    # (the telemetry store outlives a test: counts are compared with those before it).
    before = topics_published(
        [
            TopicGrant(ORIGIN, 1, "acme", "viewer"),
            TopicGrant("smarteros.events", None, None, "platform"),
        ]
    )
    counted("acme", ORIGIN, 2)
    counted("acme", ORIGIN, 5, minutes_ago=25 * 60)
    counted("globex", "globex.shopify.webhooks", 7)
    counted("acme", "smarteros.events", 3)
    counted("globex", "smarteros.events", 4)
    page = world.client("acme-viewer").get("/topics/")
    html = page.content.decode()
    assert page.status_code == 200
    row = html[html.index('data-topic="acme.shopify.webhooks"') :]
    row = row[: row.index("</tr>")]
    expected = before.of(ORIGIN) + 2
    assert f'<td class="messages">{expected}</td>' in row and "3 days" in row and "delete" in row
    assert "messages counted up to" in html and "globex" not in html
    assert "compacted" in html  # acme.shopify.products
    assert "not reported by the broker" in html  # the local broker lists no groups
    root = world.client("root").get("/topics/").content.decode()
    assert "smarteros.events" in root and "globex.shopify.webhooks" in root
    # A platform topic's count adds up every tenant's messages on it.
    platform_row = root[root.index('data-topic="smarteros.events"') :]
    expected = before.of("smarteros.events") + 7
    assert f'<td class="messages">{expected}</td>' in platform_row[: platform_row.index("</tr>")]


def test_detail_shows_envelope_trace_link_headers_and_dlq_reason(world: Any) -> None:
    event = envelope(
        "shopify.webhook.received",
        {"topic": "orders/create", "webhook_id": "w1", "payload": {"api_key": "plain-key"}},
    )
    dead_letter(event)
    page = world.client("acme-viewer").get(
        "/topics/message/", {"topic": DLQ, "partition": 0, "offset": 0}
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "shopify.webhook.received" in html and "PermanentFailure: total missing" in html
    assert f"/telemetry/trace/?id={event['trace_id']}" in html
    assert "plain-key" not in html
    bad = world.client("acme-viewer").get(
        "/topics/message/", {"topic": DLQ, "partition": "x", "offset": 0}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "partition"


def test_admin_replays_a_dead_letter_once_audited(world: Any) -> None:
    dead_letter({"n": "replay-me"})
    client = world.client("acme-admin")
    response = client.post("/topics/replay/", {"topic": DLQ, "partition": 0, "offset": 0})
    assert response.status_code == 200, response.content
    [replayed] = [m for m in read_all(ORIGIN) if json.loads(m.value()) == {"n": "replay-me"}]
    headers = dict(replayed.headers())
    assert headers["replay.of"] == f"{DLQ}/0/0".encode()
    assert headers["event-type"] == b"shopify.webhook.received"
    assert not any(k.startswith("dlq.") for k in headers) and replayed.key() == b"order-9"
    [audit] = audits("topics.dead_letter_replay")
    assert audit.actor == "user:acme-admin" and audit.tenant_id == world.acme.pk
    assert audit.target == f"{DLQ}/0/0" and audit.details["to"] == ORIGIN
    again = client.post("/topics/replay/", {"topic": DLQ, "partition": 0, "offset": 0})
    assert again.status_code == 409
    assert len(read_all(ORIGIN)) == 1
    detail = client.get("/topics/message/", {"topic": DLQ, "partition": 0, "offset": 0})
    page = detail.content.decode()
    assert 'id="replayed-mark"' in page and 'name="again" value="1"' in page
    assert "hx-confirm=" in page


def test_replay_refuses_a_header_pointing_elsewhere(world: Any) -> None:
    dead_letter({"n": 1}, origin="globex.shopify.webhooks")
    response = world.client("acme-admin").post(
        "/topics/replay/", {"topic": DLQ, "partition": 0, "offset": 0}
    )
    assert response.status_code == 409
    assert read_all("globex.shopify.webhooks") == [] and audits("topics.dead_letter_replay") == []
    not_dlq = world.client("acme-admin").post(
        "/topics/replay/", {"topic": ORIGIN, "partition": 0, "offset": 0}
    )
    assert not_dlq.status_code == 400 and not_dlq.json()["field"] == "topic"


def test_admin_exports_json_lines_bounded_masked_and_audited(world: Any, settings: Any) -> None:
    for i in range(5):
        produce(ORIGIN, {"n": i, "password": "pw"}, partition=0)
    client = world.client("acme-admin")
    response = client.get("/topics/export/", {"topic": ORIGIN, "start": "oldest", "limit": 3})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.content.decode().splitlines()]
    assert [line["value"]["n"] for line in lines] == [0, 1, 2]
    assert all(line["value"]["password"] != "pw" for line in lines)
    [audit] = audits("topics.export")
    assert audit.details["messages"] == 3 and audit.target == ORIGIN
    settings.TOPICS_EXPORT_MAX_MESSAGES = 10
    too_many = client.get("/topics/export/", {"topic": ORIGIN, "limit": 11})
    assert too_many.status_code == 400 and too_many.json()["field"] == "limit"
    bad_cel = client.get("/topics/export/", {"topic": ORIGIN, "cel": "value >"})
    assert bad_cel.status_code == 400 and bad_cel.json()["field"] == "cel"
    assert len(audits("topics.export")) == 1


def test_platform_admin_replay_is_audited_under_the_topic_tenant(world: Any) -> None:
    dead_letter({"n": "root-replay"})
    response = world.client("root").post(
        "/topics/replay/", {"topic": DLQ, "partition": 0, "offset": 0}
    )
    assert response.status_code == 200, response.content
    [audit] = audits("topics.dead_letter_replay")
    assert audit.actor == "user:root" and audit.tenant_id == world.acme.pk


def test_admin_replays_every_dead_letter_not_replayed_before(world: Any) -> None:
    for n in range(3):
        dead_letter({"n": f"bulk-{n}"})
    client = world.client("acme-admin")
    assert (
        client.post("/topics/replay/", {"topic": DLQ, "partition": 0, "offset": 1}).status_code
        == 200
    )
    view = client.get("/topics/view/", {"topic": DLQ}).content.decode()
    assert 'id="replay-all"' in view
    unconfirmed = client.post("/topics/replay-all/", {"topic": DLQ, "confirm": "yes"})
    assert (
        unconfirmed.status_code == 400 and f"Type {DLQ} to confirm." in unconfirmed.content.decode()
    )
    assert (
        world.client("acme-viewer")
        .post("/topics/replay-all/", {"topic": DLQ, "confirm": DLQ})
        .status_code
        == 403
    )
    done = client.post("/topics/replay-all/", {"topic": DLQ, "confirm": DLQ})
    assert done.status_code == 200, done.content
    assert (
        "Replayed 2 dead letters" in done.content.decode()
        and "1 replayed before" in done.content.decode()
    )
    values = sorted(json.loads(m.value())["n"] for m in read_all(ORIGIN))
    assert values == ["bulk-0", "bulk-1", "bulk-2"]  # each once: offset 1 by hand, the others now
    assert sorted(a.target for a in audits("topics.dead_letter_replay")) == [
        f"{DLQ}/0/0",
        f"{DLQ}/0/1",
        f"{DLQ}/0/2",
    ]
    again = client.post("/topics/replay-all/", {"topic": DLQ, "confirm": DLQ})
    assert "Replayed 0 dead letters" in again.content.decode() and len(read_all(ORIGIN)) == 3
    not_dlq = client.post("/topics/replay-all/", {"topic": ORIGIN, "confirm": ORIGIN})
    assert not_dlq.status_code == 400
