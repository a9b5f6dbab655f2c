"""Isolation: an operator of globex gets nothing of acme's topics by any name, pattern, partition
or offset trick, over the websocket or HTTP; a viewer cannot replay or export."""

from __future__ import annotations

from typing import Any

import pytest

from tenants.models import AuditEvent
from tenants.scope import dangerously_unscoped
from tests.telemetry.topics.conftest import produce
from tests.telemetry.topics.sockets import collect, open_socket, run_sockets, until

pytestmark = pytest.mark.django_db(transaction=True)

ACME = "acme.shopify.webhooks"
SECRET = "acme-only-payload"

TRICKS: list[Any] = [
    ACME,
    "acme.shopify.webhooks.dlq",
    "acme.*",
    "acme.shopify.*",
    "*",
    ".*",
    "^acme\\..*",
    "acme.shopify.webhooks ",
    " acme.shopify.webhooks",
    "ACME.shopify.webhooks",
    "globex.shopify.webhooks/../acme.shopify.webhooks",
    "globex.shopify.webhooks,acme.shopify.webhooks",
    ["acme.shopify.webhooks"],
    {"name": "acme.shopify.webhooks"},
    None,
    "",
    "smarteros.events",
    "mcp.agent.actions",
    "mcp.agent.telemetry",
]


def test_globex_socket_gets_nothing_of_acme(world: Any) -> None:
    produce(ACME, {"secret": SECRET}, partition=0)
    produce("acme.shopify.webhooks.dlq", {"secret": SECRET}, headers=[("dlq.topic", ACME.encode())])
    produce("globex.shopify.webhooks", {"mine": True}, partition=0)
    cookie = world.cookie("globex-admin")

    async def scenario() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        socket = await open_socket(cookie)
        for topic in TRICKS:
            for action in ("browse", "live"):
                await socket.send_json_to({"action": action, "topic": topic, "start": "oldest"})
                error = await until(socket, "error")
                assert error["field"] == "topic", (topic, error)
                seen.append(error)
        # Its own topic, with partition and offset tricks that must stay inside it.
        for partition, start in [
            (0, "oldest"),
            ("0", "offset:0"),
            (7, "oldest"),
            (-1, "oldest"),
            ("0;1", "oldest"),
            (None, "cursor:0-0,1-0,2-0,99-0"),
            (None, "offset:999999999"),
        ]:
            await socket.send_json_to(
                {
                    "action": "browse",
                    "topic": "globex.shopify.webhooks",
                    "partition": partition,
                    "start": start,
                }
            )
            frames = [f for f in await collect(socket, 1.5) if f["type"] != "progress"]
            assert len(frames) == 1, (partition, start, frames)
            assert frames[0]["type"] in ("error", "results")
            for message in frames[0].get("messages", []):
                assert message["topic"] == "globex.shopify.webhooks"
            seen.extend(frames)
        await socket.send_json_to({"action": "live", "topic": "globex.shopify.webhooks"})
        await until(socket, "live")
        produce(ACME, {"secret": SECRET}, partition=0)
        produce("globex.shopify.webhooks", {"mine": 2}, partition=0)
        live = await collect(socket, 2)
        assert [m["value"] for f in live for m in f.get("messages", [])] == [{"mine": 2}]
        seen.extend(live)
        await socket.disconnect()
        return seen

    assert SECRET not in repr(run_sockets(scenario))


def test_globex_http_gets_nothing_of_acme(world: Any) -> None:
    produce(ACME, {"secret": SECRET}, partition=0)
    client = world.client("globex-admin")
    listing = client.get("/topics/")
    assert listing.status_code == 200
    assert b"acme." not in listing.content and b"globex.shopify.webhooks" in listing.content
    for topic in (
        "acme.shopify.webhooks",
        "acme.*",
        "acme.shopify.webhooks.dlq",
        "smarteros.events",
    ):
        assert client.get("/topics/view/", {"topic": topic}).status_code == 404
        assert (
            client.get(
                "/topics/message/", {"topic": topic, "partition": 0, "offset": 0}
            ).status_code
            == 404
        )
        assert client.get("/topics/export/", {"topic": topic}).status_code == 404
        assert (
            client.post(
                "/topics/replay/", {"topic": topic, "partition": 0, "offset": 0}
            ).status_code
            == 404
        )


def test_viewer_cannot_replay_or_export(world: Any) -> None:
    produce(
        "acme.shopify.webhooks.dlq",
        {"n": 1},
        headers=[("dlq.topic", ACME.encode()), ("dlq.reason", b"bad")],
    )
    client = world.client("acme-viewer")
    assert client.get("/topics/view/", {"topic": ACME}).status_code == 200
    replay = client.post(
        "/topics/replay/", {"topic": "acme.shopify.webhooks.dlq", "partition": 0, "offset": 0}
    )
    assert replay.status_code == 403
    assert client.get("/topics/export/", {"topic": ACME}).status_code == 403
    detail = client.get(
        "/topics/message/", {"topic": "acme.shopify.webhooks.dlq", "partition": 0, "offset": 0}
    )
    assert detail.status_code == 200 and b"Replay" not in detail.content
    with dangerously_unscoped():
        assert not AuditEvent.objects.filter(action__startswith="topics.").exists()


def test_tenant_cannot_see_platform_topics_even_with_a_colliding_slug(
    world: Any, make_tenant: Any
) -> None:
    from django.contrib.auth import get_user_model

    from telemetry.topics.access import TopicDenied, topic_grant, topic_grants
    from tenants.models import Membership

    mcp = make_tenant("mcp").tenant
    user = get_user_model().objects.create_user("mcp-admin", password="pw-mcp-admin")
    with dangerously_unscoped():
        Membership.objects.create(user=user, tenant=mcp, role="admin")
    names = {g.topic for g in topic_grants(user)}
    assert "mcp.shopify.webhooks" in names and "mcp.agent.actions" not in names
    with pytest.raises(TopicDenied):
        topic_grant(user, "mcp.agent.actions")
