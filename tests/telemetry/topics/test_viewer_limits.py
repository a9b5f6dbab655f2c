"""Per-operator limits of the viewer and browse cancellation, over the real websocket: a new
browse ends the socket's previous scan (its Kafka consumer closed), an operator runs at most
TOPICS_MAX_BROWSES_PER_USER browses, holds at most TOPICS_MAX_SOCKETS_PER_USER sockets and
TOPICS_MAX_EXPORTS_PER_USER exports; a slow filter is stopped by its budget, never on the loop."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from confluent_kafka import Producer
from django.conf import settings as django_settings

from telemetry.topics.browse import scans_running
from telemetry.topics.limits import work_acquire, work_release
from tests.telemetry.topics.conftest import envelope
from tests.telemetry.topics.sockets import collect, open_socket, run_sockets, until

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"
# Within the limits (two comprehensions nested) but quadratic in the message's list.
SQUARE = "value.data.items.map(a, value.data.items.map(b, a * b)).size() == 0"


def fill(count: int, items: int) -> None:
    """`count` messages each carrying a list of `items` numbers (one record per batch: the
    local broker counts a batch of several records as one offset)."""
    producer = Producer({"bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS})
    value = json.dumps(envelope("test.items", {"items": list(range(items))})).encode()
    for _ in range(count):
        producer.produce(TOPIC, value=value, key="k")
        assert producer.flush(10) == 0


def slow_browse(**extra: Any) -> dict[str, Any]:
    """A browse that runs for seconds: every message costs the filter a few milliseconds."""
    return {"action": "browse", "topic": TOPIC, "start": "oldest", "cel": SQUARE, **extra}


FAST_BROWSE = {"action": "browse", "topic": TOPIC, "start": "newest", "limit": 5}


async def event_loop_probe(stop: asyncio.Event) -> float:
    """The longest this loop went without running a 10 ms tick until `stop` is set."""
    worst, last = 0.0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        worst, last = max(worst, now - last), now
    return worst


def test_a_new_browse_ends_the_previous_scan_and_closes_its_consumer(
    world: Any, settings: Any
) -> None:
    settings.EVALUATOR_REQUEST_MS = 120_000
    fill(600, 40)
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to(slow_browse(limit=1000))
        await until(socket, "progress", timeout=20)
        assert scans_running() == 1
        await socket.send_json_to(FAST_BROWSE)
        results = await until(socket, "results", timeout=20)
        assert len(results["messages"]) == 5 and results["cel"] == "", {
            k: v for k, v in results.items() if k != "messages"
        }
        # The first scan ended before the second began: no consumer left, no late results.
        assert scans_running() == 0
        assert not [f for f in await collect(socket, 1.0) if f["type"] == "results"]
        await socket.disconnect()

    run_sockets(scenario)


def test_an_operator_runs_at_most_the_browse_limit_at_once(world: Any, settings: Any) -> None:
    settings.TOPICS_MAX_BROWSES_PER_USER = 2
    settings.EVALUATOR_REQUEST_MS = 120_000
    fill(600, 40)
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        sockets = [await open_socket(cookie) for _ in range(3)]
        for socket in sockets[:2]:
            await socket.send_json_to(slow_browse(limit=1000))
            await until(socket, "progress", timeout=20)
        await sockets[2].send_json_to(FAST_BROWSE)
        refused = await until(sockets[2], "error")
        assert refused["field"] == "limit"
        assert refused["message"] == "you have 2 browses running already; close one first"
        assert scans_running() == 2
        # The first socket replaces its slow scan with a fast one; once that is done, the
        # third socket's browse is within the limit.
        await sockets[0].send_json_to(FAST_BROWSE)
        await until(sockets[0], "results", timeout=20)
        await sockets[2].send_json_to(FAST_BROWSE)
        assert len((await until(sockets[2], "results", timeout=20))["messages"]) == 5
        for socket in sockets:
            await socket.disconnect()

    run_sockets(scenario)


def test_sockets_beyond_the_limit_are_answered_and_closed(world: Any, settings: Any) -> None:
    settings.TOPICS_MAX_SOCKETS_PER_USER = 2
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        first, second = await open_socket(cookie), await open_socket(cookie)
        third = await open_socket(cookie)  # accepted, told why, then closed
        answer = await until(third, "error")
        assert answer == {
            "type": "error",
            "field": "limit",
            "message": "you have 2 topic viewer connections already; close one first",
        }
        assert (await third.receive_output(5)) == {"type": "websocket.close", "code": 4429}
        await first.disconnect()
        fourth = await open_socket(cookie)
        await fourth.send_json_to({"action": "pause"})
        assert (await until(fourth, "paused"))["type"] == "paused"
        for socket in (second, fourth):
            await socket.disconnect()

    run_sockets(scenario)


def test_exports_beyond_the_limit_get_429(world: Any, settings: Any) -> None:
    settings.TOPICS_MAX_EXPORTS_PER_USER = 1
    admin = world.users["acme-admin"]
    client = world.client("acme-admin")
    work_acquire("exports", user_id=admin.pk, lease="export:held-by-another-request")
    try:
        refused = client.get("/topics/export/", {"topic": TOPIC})
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "you have 1 exports running already; close one first",
            "field": "limit",
        }
    finally:
        work_release("exports", user_id=admin.pk, lease="export:held-by-another-request")
    assert client.get("/topics/export/", {"topic": TOPIC}).status_code == 200


def test_a_slow_browse_filter_is_stopped_by_its_budget_off_the_loop(world: Any) -> None:
    """3,000 items: seconds per message on the loop before; now the worker is stopped at the
    per-message budget, the socket gets a clear error, and the loop keeps ticking."""
    fill(3, 3000)
    cookie = world.cookie("acme-viewer")

    async def scenario() -> float:
        socket = await open_socket(cookie)
        stop = asyncio.Event()
        probe = asyncio.create_task(event_loop_probe(stop))
        await socket.send_json_to(slow_browse(limit=10))
        error = await until(socket, "error", timeout=20)
        stop.set()
        assert error["field"] == "cel"
        assert "one message used more than its CPU budget" in error["message"]
        await socket.send_json_to(FAST_BROWSE)  # the socket and the evaluator still serve
        assert len((await until(socket, "results", timeout=20))["messages"]) == 3
        await socket.disconnect()
        return await probe

    assert run_sockets(scenario) < 0.25


def test_a_slow_live_filter_ends_the_live_view_off_the_loop(world: Any) -> None:
    cookie = world.cookie("acme-viewer")

    async def scenario() -> float:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "live", "topic": TOPIC, "cel": SQUARE})
        await until(socket, "live")
        stop = asyncio.Event()
        probe = asyncio.create_task(event_loop_probe(stop))
        await asyncio.get_running_loop().run_in_executor(None, fill, 2, 3000)
        error = await until(socket, "error", timeout=20)
        stop.set()
        assert error["field"] == "cel"
        assert error["message"].startswith("live view stopped: the expression was stopped")
        await socket.disconnect()
        return await probe

    assert run_sockets(scenario) < 0.25
