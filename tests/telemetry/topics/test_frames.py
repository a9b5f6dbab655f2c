"""The viewer's websocket answers every malformed frame with an error frame and stays open, and
accepts a handshake only from its own origin: scheme, host and port."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from smarteros.asgi import application
from smarteros.websocket_origin import origin_allowed
from tests.telemetry.topics.sockets import (
    WebsocketCommunicator,
    open_socket,
    receive,
    run_sockets,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"
NESTED_MAPS = "size(" + "[0,1,2,3,4,5,6,7,8,9].map(x, " * 6 + "1" + ")" * 6 + ") > 0"

# (what is sent, the field the error frame names): raw websocket.receive events.
MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"text": "not json"}, "frame"),
    ({"text": '{"action": "browse"'}, "frame"),
    ({"bytes": b'{"action": "pause"}'}, "frame"),
    ({"text": json.dumps({"action": "browse", "q": "x" * 70_000})}, "frame"),
    ({"text": "[" * 5000 + "]" * 5000}, "frame"),
    ({"text": "[1, 2]"}, "action"),
    ({"text": '"browse"'}, "action"),
    ({"text": "null"}, "action"),
    ({"text": "{}"}, "action"),
    ({"text": json.dumps({"action": "delete"})}, "action"),
    ({"text": json.dumps({"action": ["browse"]})}, "action"),
    ({"text": json.dumps({"action": {"x": 1}})}, "action"),
    ({"text": json.dumps({"action": "browse", "topic": ["a"]})}, "topic"),
    ({"text": json.dumps({"action": "browse", "topic": "globex.shopify.webhooks"})}, "topic"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "partition": {"a": 1}})}, ""),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "partition": 10**30})}, ""),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "limit": "many"})}, "limit"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "start": 5})}, "start"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "start": "offset:x"})}, "start"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "q": ["x"]})}, "q"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "cel": 5})}, "cel"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "cel": "value >"})}, "cel"),
    ({"text": json.dumps({"action": "browse", "topic": TOPIC, "cel": NESTED_MAPS})}, "cel"),
    ({"text": json.dumps({"action": "live", "topic": TOPIC, "cel": NESTED_MAPS})}, "cel"),
    ({"text": json.dumps({"action": "live", "topic": 7})}, "topic"),
]


def test_every_malformed_frame_is_answered_and_the_socket_stays_open(world: Any) -> None:
    cookie = world.cookie("acme-viewer")

    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        socket = await open_socket(cookie)
        answers = []
        for event, _ in MALFORMED:
            await socket.send_input({"type": "websocket.receive", **event})
            answers.append((str(event)[:60], await receive(socket)))
        await socket.send_json_to({"action": "pause"})
        answers.append(("pause", await receive(socket)))
        await socket.disconnect()
        return answers

    answers = run_sockets(scenario)
    assert answers[-1][1] == {"type": "paused"}  # still open and serving after all of them
    for (sent, answer), (_, field) in zip(answers, MALFORMED, strict=False):
        assert answer["type"] == "error", (sent, answer)
        assert answer["message"], (sent, answer)
        if field:
            assert answer["field"] == field, (sent, answer)


def test_a_depth_six_filter_is_refused_naming_the_limit(world: Any) -> None:
    cookie = world.cookie("acme-viewer")

    async def scenario() -> dict[str, Any]:
        socket = await open_socket(cookie)
        await socket.send_json_to({"action": "browse", "topic": TOPIC, "cel": NESTED_MAPS})
        answer = await until(socket, "error")
        await socket.disconnect()
        return answer

    answer = run_sockets(scenario)
    assert answer["field"] == "cel"
    assert (
        "comprehensions (map, filter, all, exists, exists_one) may nest at most 2 deep"
        in (answer["message"])
    )


def handshake(origin: bytes | None, host: bytes, scheme: str = "ws") -> dict[str, Any]:
    headers = [(b"host", host)] + ([(b"origin", origin)] if origin is not None else [])
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000", "ws", True),
        (b"https://localhost", b"localhost", "wss", True),
        (b"https://localhost:443", b"localhost", "wss", True),
        (b"http://127.0.0.1:8001", b"127.0.0.1:8000", "ws", False),  # another port, same host
        (b"http://127.0.0.1", b"127.0.0.1:8000", "ws", False),
        (b"https://127.0.0.1:8000", b"127.0.0.1:8000", "ws", False),  # another scheme
        (b"http://evil.example:8000", b"127.0.0.1:8000", "ws", False),
        (b"http://evil.example", b"evil.example", "ws", False),  # not an allowed host
        (b"null", b"127.0.0.1:8000", "ws", False),
        (None, b"127.0.0.1:8000", "ws", False),
        (b"http://127.0.0.1:99999", b"127.0.0.1:99999", "ws", False),
    ],
)
def test_origin_is_compared_by_scheme_host_and_port(
    origin: bytes | None, host: bytes, scheme: str, allowed: bool
) -> None:
    assert origin_allowed(handshake(origin, host, scheme)) is allowed


def test_trusted_origins_are_accepted(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example.com"]
    assert origin_allowed(handshake(b"https://console.example.com", b"127.0.0.1:8000"))
    assert not origin_allowed(handshake(b"https://console.example.com:8443", b"127.0.0.1:8000"))


def test_a_page_on_another_port_cannot_open_the_operators_socket(world: Any) -> None:
    cookie = world.cookie("acme-viewer")

    async def connect(origin: bytes) -> tuple[bool, Any]:
        headers = [
            (b"origin", origin),
            (b"host", b"127.0.0.1:8000"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ]
        socket = WebsocketCommunicator(application, "/ws/topics/", headers=headers)
        result = await socket.connect(timeout=10)
        if result[0]:
            await socket.disconnect()
        return result

    assert async_to_sync(connect)(b"http://127.0.0.1:8000")[0]
    assert async_to_sync(connect)(b"http://127.0.0.1:9999") == (False, 1000)
