"""Live tail over the websocket: delivery latency, filters, masking, pause and missed counts,
limits, and one shared consumer per topic."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pydantic import Field

from smarteros.events.schemas import EventData, event_type
from telemetry.topics.live import active_tails
from telemetry.topics.masking import MASK
from tests.telemetry.topics.conftest import envelope, produce
from tests.telemetry.topics.sockets import collect, open_socket, receive, run_sockets, until

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"


@event_type("test.refund.issued")
class RefundIssued(EventData):
    amount: int
    gateway_secret: str = Field(json_schema_extra={"x-secret": True})


async def produce_async(*args: Any, **kwargs: Any) -> None:
    await asyncio.get_running_loop().run_in_executor(None, lambda: produce(*args, **kwargs))


def test_message_arrives_within_two_seconds_filtered_and_masked(world: Any) -> None:
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to(
            {"action": "live", "topic": TOPIC, "cel": "value.data.amount > 100"}
        )
        await until(socket, "live")
        await produce_async(
            TOPIC, envelope("test.refund.issued", {"amount": 50, "gateway_secret": "s1"})
        )
        sent = time.monotonic()
        await produce_async(
            TOPIC,
            envelope("test.refund.issued", {"amount": 150, "gateway_secret": "hunter2-secret"}),
        )
        batch = await until(socket, "batch", timeout=5)
        assert time.monotonic() - sent < 2.0
        [message] = batch["messages"]
        assert message["value"]["data"] == {"amount": 150, "gateway_secret": MASK}
        assert batch["missed"] == 0
        assert not [f for f in await collect(socket, 0.5) if f.get("messages")]
        await socket.disconnect()

    run_sockets(scenario)


def test_paused_client_sees_its_missed_count(world: Any, settings: Any) -> None:
    settings.TOPICS_SOCKET_BUFFER = 10
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "live", "topic": TOPIC})
        await until(socket, "live")
        await socket.send_json_to({"action": "pause"})
        await until(socket, "paused")
        for i in range(25):
            await produce_async(TOPIC, {"n": i}, partition=0)
        await asyncio.sleep(1.5)
        await socket.send_json_to({"action": "resume"})
        frames = [f for f in await collect(socket, 2) if f["type"] == "batch"]
        delivered = [m["value"]["n"] for f in frames for m in f["messages"]]
        assert delivered == list(range(15, 25))  # the buffer keeps the newest
        assert frames[-1]["missed"] == 15
        await socket.disconnect()

    run_sockets(scenario)


def test_one_tail_per_topic_started_by_the_first_and_stopped_after_the_last(world: Any) -> None:
    viewer, admin = world.cookie("acme-viewer"), world.cookie("acme-admin")

    async def scenario() -> None:
        first, second = await open_socket(viewer), await open_socket(admin)
        for socket in (first, second):
            await socket.send_json_to({"action": "live", "topic": TOPIC})
            await until(socket, "live")
        assert active_tails() == {TOPIC: 2}
        await produce_async(TOPIC, {"n": 1})
        for socket in (first, second):
            assert (await until(socket, "batch"))["messages"][0]["value"] == {"n": 1}
        await first.disconnect()
        await asyncio.sleep(0.2)
        assert active_tails() == {TOPIC: 1}
        await second.disconnect()
        await asyncio.sleep(0.2)
        assert active_tails() == {}

    run_sockets(scenario)


def test_viewer_limit_per_user(world: Any, settings: Any) -> None:
    settings.TOPICS_MAX_VIEWERS_PER_USER = 2
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        sockets = [await open_socket(cookie) for _ in range(3)]
        for socket in sockets[:2]:
            await socket.send_json_to({"action": "live", "topic": TOPIC})
            await until(socket, "live")
        await sockets[2].send_json_to({"action": "live", "topic": TOPIC})
        refused = await until(sockets[2], "error")
        assert refused["field"] == "limit" and "2 live viewers" in refused["message"]
        await sockets[0].disconnect()
        await asyncio.sleep(0.3)
        await sockets[2].send_json_to({"action": "live", "topic": TOPIC})
        await until(sockets[2], "live")
        for socket in sockets[1:]:
            await socket.disconnect()

    run_sockets(scenario)


def test_browse_over_the_socket_reports_results_and_bad_input(world: Any) -> None:
    cookie = world.cookie("acme-viewer")
    for i in range(5):
        produce(TOPIC, {"n": i}, partition=0)

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to(
            {"action": "browse", "topic": TOPIC, "start": "oldest", "cel": "value.n >= 3"}
        )
        results = await until(socket, "results")
        assert [m["value"]["n"] for m in results["messages"]] == [3, 4]
        assert results["scanned"] == 5 and results["done"]
        await socket.send_json_to({"action": "browse", "topic": TOPIC, "cel": "value.n >"})
        error = await until(socket, "error")
        assert error["field"] == "cel" and "Syntax error" in error["message"]
        await socket.send_json_to({"action": "browse", "topic": TOPIC, "limit": "lots"})
        assert (await until(socket, "error"))["field"] == "limit"
        await socket.send_json_to(["not", "an", "object"])
        assert (await receive(socket))["field"] == "action"
        await socket.disconnect()

    run_sockets(scenario)


def test_anonymous_socket_is_closed() -> None:
    async def scenario() -> None:
        from smarteros.asgi import application
        from tests.telemetry.topics.sockets import WebsocketCommunicator

        socket = WebsocketCommunicator(
            application,
            "/ws/topics/",
            headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
        )
        connected, code = await socket.connect(timeout=10)
        assert not connected and code == 4401

    run_sockets(scenario)


def test_idle_socket_keeps_listening_past_the_layer_wait(world: Any) -> None:
    """channels-redis waits 5 s per receive; a read timeout at the same 5 s killed the socket."""
    cookie = world.cookie("acme-viewer")

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "live", "topic": TOPIC})
        await until(socket, "live")
        await asyncio.sleep(6.5)
        await produce_async(TOPIC, {"after": "idle"})
        assert (await until(socket, "batch"))["messages"][0]["value"] == {"after": "idle"}
        await socket.disconnect()

    run_sockets(scenario)


def test_removed_membership_ends_an_open_live_view(world: Any, monkeypatch: Any) -> None:
    from telemetry.topics import limits
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    monkeypatch.setattr(limits, "RENEW_SECONDS", 0.5)
    cookie = world.cookie("acme-viewer")

    def remove_membership() -> None:
        with dangerously_unscoped():
            Membership.objects.filter(user=world.users["acme-viewer"]).delete()

    async def scenario() -> None:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "live", "topic": TOPIC})
        await until(socket, "live")
        await asyncio.get_running_loop().run_in_executor(None, remove_membership)
        error = await until(socket, "error", timeout=5)
        assert error["field"] == "topic" and "no longer" in error["message"]
        await produce_async(TOPIC, {"after": "removal"})
        assert not [f for f in await collect(socket, 1.5) if f.get("messages")]
        assert active_tails() == {}
        await socket.disconnect()

    run_sockets(scenario)


def test_viewer_limit_per_tenant_counts_every_operator(world: Any, settings: Any) -> None:
    import secrets

    from telemetry.topics.limits import ViewerLimitReached, viewer_acquire, viewer_release

    settings.TOPICS_MAX_VIEWERS_PER_TENANT = 2
    tenant = world.acme.pk
    leases = [f"lease-{secrets.token_hex(4)}" for _ in range(3)]
    viewer_acquire(user_id=world.users["acme-viewer"].pk, tenant_id=tenant, lease=leases[0])
    viewer_acquire(user_id=world.users["acme-admin"].pk, tenant_id=tenant, lease=leases[1])
    with pytest.raises(ViewerLimitReached, match="this tenant has 2"):
        viewer_acquire(user_id=world.users["root"].pk, tenant_id=tenant, lease=leases[2])
    # Another tenant's topics are not counted against acme.
    viewer_acquire(user_id=world.users["root"].pk, tenant_id=world.globex.pk, lease=leases[2])
    viewer_release(user_id=world.users["acme-viewer"].pk, tenant_id=tenant, lease=leases[0])
    viewer_acquire(user_id=world.users["root"].pk, tenant_id=tenant, lease=leases[0])
    for i, name in enumerate(("root", "acme-admin")):
        viewer_release(user_id=world.users[name].pk, tenant_id=tenant, lease=leases[i])
    viewer_release(user_id=world.users["root"].pk, tenant_id=world.globex.pk, lease=leases[2])
