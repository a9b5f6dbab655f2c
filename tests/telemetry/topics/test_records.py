"""Every reader of the viewer reads to where a partition really ends, on the local broker, which
lists a high watermark short of the end after a producer's batch of several records: browse
forward ("load more") and back ("newest"), the message page, export, the live tail and the bulk
dead-letter replay. Counts match what was produced."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from confluent_kafka import Producer, TopicPartition
from django.conf import settings

from telemetry.topics.browse import browse, message_at, parse_start
from telemetry.topics.filters import compile_filter
from telemetry.topics.masking import Masker
from telemetry.topics.records import END_SECONDS, partition_ends, viewer_consumer
from tests.telemetry.topics.conftest import produce
from tests.telemetry.topics.sockets import collect, open_socket, run_sockets, until

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"
DLQ = "acme.shopify.webhooks.dlq"
BASE = 1_800_000_000_000


def produce_batch(
    topic: str,
    values: list[Any],
    *,
    partition: int,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Produce `values` as one batch: one producer, one flush, lingering long enough that
    every record goes in the same request."""
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "linger.ms": 2000})
    for value in values:
        producer.produce(
            topic,
            json.dumps(value).encode(),
            partition=partition,
            timestamp=BASE + value["n"] * 1000,
            headers=headers or [],
        )
    assert producer.flush(10) == 0


def listed_high(topic: str, partition: int) -> int:
    consumer = viewer_consumer()
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)[1])
    finally:
        consumer.close()


def run(**kwargs: Any) -> Any:
    kwargs.setdefault("message_filter", compile_filter())
    return browse(topic=TOPIC, masker=Masker(tenant_slug="acme"), **kwargs)


def numbers(result: Any) -> list[int]:
    return [m["value"]["n"] for m in result.messages]


def test_partition_ends_are_where_the_last_message_is(world: Any) -> None:
    produce_batch(TOPIC, [{"n": i} for i in range(11)], partition=0)
    # What this file is about: the broker lists a watermark short of the end.
    assert listed_high(TOPIC, 0) < 11, "the broker lists the real end now: nothing reproduced"
    consumer = viewer_consumer()
    try:
        highs = {p: listed_high(TOPIC, p) for p in range(3)}
        began = time.monotonic()
        assert partition_ends(consumer, TOPIC, highs) == {0: 11, 1: 0, 2: 0}
        # Where nothing is missing, it is one empty fetch, not the bound.
        again = time.monotonic()
        assert partition_ends(consumer, TOPIC, {0: 11, 1: 0, 2: 0}) == {0: 11, 1: 0, 2: 0}
        assert time.monotonic() - again < END_SECONDS / 2
        assert again - began < END_SECONDS / 2
    finally:
        consumer.close()


def test_browse_forward_and_load_more_reach_the_last_message_of_a_batch(world: Any) -> None:
    produce_batch(TOPIC, [{"n": i} for i in range(11)], partition=0)
    produce_batch(TOPIC, [{"n": i} for i in range(11, 16)], partition=1)
    everything = run(start=parse_start("oldest"), limit=1000)
    assert sorted(numbers(everything)) == list(range(16))
    assert everything.scanned == 16 and everything.matched == 16
    assert everything.done and everything.stopped == "end"
    assert everything.next.cursor == {0: 11, 1: 5, 2: 0}

    pages: list[list[int]] = []
    start = parse_start("oldest")
    for _ in range(5):
        page = run(partition=0, start=start, limit=4)
        pages.append(numbers(page))
        start = parse_start(page.next.encode())
        if page.done:
            break
    assert pages == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert page.stopped == "end" and page.next.encode() == "cursor:0-11"

    # Exactly the limit at the end: the end is known, not guessed.
    exact = run(partition=0, start=parse_start("offset:7"), limit=4)
    assert numbers(exact) == [7, 8, 9, 10] and exact.done and exact.stopped == "end"

    began = time.monotonic()
    at_end = run(partition=0, start=start, limit=4)
    assert at_end.messages == [] and at_end.done and at_end.next.encode() == "cursor:0-11"
    assert time.monotonic() - began < END_SECONDS  # one short look, not the time budget

    produce(TOPIC, {"n": 16}, partition=0, timestamp=BASE + 16_000)
    more = run(partition=0, start=start, limit=4)
    assert numbers(more) == [16] and more.done and more.next.encode() == "cursor:0-12"
    assert message_at(topic=TOPIC, partition=0, offset=10, masker=Masker(tenant_slug="acme"))[
        "value"
    ] == {"n": 10}


def test_newest_and_older_pages_start_at_the_last_message_of_a_batch(world: Any) -> None:
    produce_batch(TOPIC, [{"n": i} for i in range(11)], partition=0)
    produce_batch(TOPIC, [{"n": i} for i in range(11, 16)], partition=1)
    newest = run(start=parse_start("newest"), limit=3)
    assert numbers(newest) == [13, 14, 15] and not newest.done

    seen: list[int] = []
    start = parse_start("newest")
    for _ in range(10):
        page = run(partition=0, start=start, limit=4)
        seen = numbers(page) + seen
        start = parse_start(page.next.encode())
        if page.done:
            break
    assert seen == list(range(11)) and page.done

    whole = run(start=parse_start("newest"), limit=100)
    assert sorted(numbers(whole)) == list(range(16)) and whole.done
    # An older page from a cursor past the listed watermark is not cut at it.
    older = run(partition=0, start=parse_start("before:0-9"), limit=3)
    assert numbers(older) == [6, 7, 8]


def test_export_has_every_message_of_a_batch(world: Any) -> None:
    produce_batch(TOPIC, [{"n": i} for i in range(11)], partition=0)
    client = world.client("acme-admin")
    everything = client.get("/topics/export/", {"topic": TOPIC, "start": "oldest"})
    assert everything.status_code == 200
    lines = [json.loads(line) for line in everything.content.decode().splitlines()]
    assert [line["value"]["n"] for line in lines] == list(range(11))
    assert everything["X-Scanned"] == "11"
    newest = client.get("/topics/export/", {"topic": TOPIC, "start": "newest", "limit": 3})
    assert [json.loads(line)["value"]["n"] for line in newest.content.decode().splitlines()] == [
        8,
        9,
        10,
    ]


def test_live_tail_starts_after_the_last_message_of_a_batch(world: Any) -> None:
    produce_batch(TOPIC, [{"n": i} for i in range(11)], partition=0)
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "live", "topic": TOPIC})
        await until(socket, "live")
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: produce(TOPIC, {"n": 11}, partition=0)
        )
        frames = [f for f in await collect(socket, 2) if f["type"] == "batch"]
        assert [m["value"]["n"] for f in frames for m in f["messages"]] == [11]
        await socket.disconnect()

    run_sockets(scenario)


def test_bulk_replay_takes_every_dead_letter_of_a_batch(world: Any) -> None:
    headers = [("dlq.reason", b"PermanentFailure"), ("dlq.topic", TOPIC.encode())]
    produce_batch(DLQ, [{"n": i} for i in range(6)], partition=0, headers=headers)
    done = world.client("acme-admin").post("/topics/replay-all/", {"topic": DLQ, "confirm": DLQ})
    assert done.status_code == 200 and "Replayed 6 dead letters" in done.content.decode()
    replayed = run(start=parse_start("oldest"), limit=100)
    assert sorted(numbers(replayed)) == list(range(6))
