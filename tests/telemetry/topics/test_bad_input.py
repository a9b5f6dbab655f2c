"""Numbers and positions sent to the topic viewer, over HTTP and over its websocket: `²` (which
`str.isdigit()` accepts), 5,000 digits, partitions past int32 and offsets or times past int64
(which the Kafka client refuses with OverflowError), NUL in what export records. Each is a 400
or an error frame naming the field, never a 500 or a socket closed without an answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.telemetry.topics.conftest import produce
from tests.telemetry.topics.sockets import open_socket, receive, run_sockets

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"
DLQ = "acme.shopify.webhooks.dlq"
BAD_NUMBERS = ["²", "9" * 5000, "\uff11", str(2**31), str(2**63), str(2**64), "-1", "1_0"]


def test_bad_numbers_over_http_are_400_naming_the_field(world: Any) -> None:
    produce(TOPIC, {"n": 1}, partition=0)
    admin = world.client("acme-admin")
    for raw in BAD_NUMBERS:
        for field, query in (
            ("partition", {"partition": raw, "offset": "0"}),
            ("offset", {"partition": "0", "offset": raw}),
        ):
            detail = admin.get("/topics/message/", {"topic": TOPIC, **query})
            assert detail.status_code == 400, (field, raw[:12], detail.status_code)
            assert detail.json()["field"] == field
            replay = admin.post("/topics/replay/", {"topic": DLQ, **query})
            assert replay.status_code == 400, (field, raw[:12], replay.status_code)
            assert replay.json()["field"] == field
        export = admin.get("/topics/export/", {"topic": TOPIC, "limit": raw})
        assert export.status_code == 400 and export.json()["field"] == "limit", raw[:12]
        export = admin.get("/topics/export/", {"topic": TOPIC, "partition": raw})
        assert export.status_code == 400 and export.json()["field"] == "partition", raw[:12]
        listing = admin.get("/topics/", {"page": raw})
        assert listing.status_code == 400 and listing.json()["field"] == "page", raw[:12]
    good = admin.get("/topics/export/", {"topic": TOPIC, "start": "oldest", "limit": "5"})
    assert good.status_code == 200 and good.content.count(b"\n") == 1


def test_positions_past_int32_and_int64_are_400_not_overflow(world: Any) -> None:
    """Digits the old checks accepted, which the Kafka client refuses with OverflowError."""
    produce(TOPIC, {"n": 1}, partition=0)
    admin = world.client("acme-admin")
    for start in (
        f"timestamp:{2**63}",
        f"timestamp:{2**64}",
        "timestamp:99999999999999",  # the year 5138
        f"offset:{2**64}",
        "offset:²",
        f"cursor:0-{2**64}",
        f"cursor:{2**40}-0",
        "timestamp:33658-01-01T00:00Z",
    ):
        export = admin.get("/topics/export/", {"topic": TOPIC, "start": start})
        assert export.status_code == 400, (start, export.status_code)
        assert export.json()["field"] == "start"
    replay = admin.post("/topics/replay/", {"topic": DLQ, "partition": "0", "offset": str(2**64)})
    assert replay.status_code == 400 and replay.json()["field"] == "offset"


def test_nul_is_refused_before_it_reaches_the_database(world: Any) -> None:
    admin = world.client("acme-admin")
    nul = admin.get("/topics/export/", {"topic": TOPIC, "q": "a\x00b"})
    assert nul.status_code == 400 and nul.json()["field"] == "q"
    assert admin.get("/topics/message/", {"topic": "acme\x00", "partition": "0"}).status_code == 404
    root = world.client("root")
    assert root.get("/topics/message/", {"topic": "x\x00", "partition": "0"}).status_code == 404


def test_bad_numbers_over_the_socket_get_error_frames(world: Any) -> None:
    cookie = world.cookie("acme-viewer")
    produce(TOPIC, {"n": 1}, partition=0)

    async def scenario() -> None:
        socket = await open_socket(cookie)
        frames = (
            [({"partition": raw}, "partition") for raw in BAD_NUMBERS]
            + [({"limit": raw}, "limit") for raw in BAD_NUMBERS]
            + [
                ({"start": f"timestamp:{2**64}"}, "start"),
                ({"start": "offset:²"}, "start"),
                ({"partition": 1.5}, "partition"),
                ({"limit": True}, "limit"),
            ]
        )
        for extra, field in frames:
            for action in ("browse", "live"):
                if action == "live" and field != "partition":
                    continue
                await socket.send_json_to({"action": action, "topic": TOPIC, **extra})
                answer = await receive(socket)
                assert answer["type"] == "error", (extra, answer)
                assert answer["field"] == field, (extra, answer)
        await socket.send_json_to({"action": "browse", "topic": TOPIC, "start": "oldest"})
        while (answer := await receive(socket))["type"] == "progress":
            pass
        assert answer["type"] == "results" and len(answer["messages"]) == 1
        await socket.disconnect()

    run_sockets(scenario)
