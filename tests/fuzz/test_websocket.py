"""Frames of every kind on the topic viewer's websocket, against the app under uvicorn with a
broker of its own: text that is not JSON, binary frames, JSON that is not an object, unknown
actions, hostile values in each field and frames past the size limit. Every frame is answered
(an error naming the field, or the action's own answer), the socket stays open, and the server
stays up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.fuzz.console_forms import hostile_values
from tests.fuzz.strategies import FUZZ, json_values
from tests.fuzz.test_topics import filters, numbers, starts, topics
from tests.processes import asgi_server
from tests.telemetry.topics.conftest import produce
from tests.telemetry.topics.conftest import world as world  # the broker, tenants and operators

pytestmark = pytest.mark.django_db

EXAMPLES = 200
# What answers a frame; progress and live batches come between and are skipped.
ANSWERS = {"error", "results", "live", "paused", "resumed", "stopped"}
ACTIONS = ["browse", "live", "pause", "resume", "stop"]

actions = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS) | hostile_values | json_values},
    optional={
        "topic": topics | json_values,
        "partition": numbers | json_values,
        "start": starts | json_values,
        "limit": numbers | json_values,
        "q": filters | json_values,
        "cel": filters | json_values,
    },
).map(json.dumps)
frames = st.one_of(
    actions,
    actions,
    actions,
    st.text(max_size=200),
    st.binary(max_size=200),
    json_values.filter(lambda value: not isinstance(value, dict)).map(json.dumps),
    st.integers(min_value=70_000, max_value=300_000).map(lambda size: "x" * size),
)


class Viewer:
    def __init__(self, url: str, socket: ClientConnection) -> None:
        self.url, self.socket = url, socket

    def answer(self, frame: str | bytes, timeout: float = 60) -> dict[str, Any]:
        """Send `frame` and return what answers it (a ConnectionClosed if the socket goes)."""
        self.socket.send(frame)
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("type") in ANSWERS:
                return message  # type: ignore[no-any-return]


@pytest.fixture
def viewer(world: Any, server_env: dict[str, str]) -> Iterator[Viewer]:
    from django.conf import settings as django_settings

    for n in range(3):
        produce("acme.shopify.webhooks", {"n": n}, partition=n % 3)
    server = asgi_server(
        env={**server_env, "KAFKA_BOOTSTRAP_SERVERS": django_settings.KAFKA_BOOTSTRAP_SERVERS}
    )
    host = server.url.removeprefix("http://")
    try:
        with connect(
            f"ws://{host}/ws/topics/",
            additional_headers={
                "Cookie": f"sessionid={world.cookie('acme-admin')}",
                "Origin": server.url,
            },
            open_timeout=30,
            max_size=2**24,
        ) as socket:
            yield Viewer(server.url, socket)
    finally:
        server.stop()


@settings(FUZZ, max_examples=EXAMPLES)
@given(frame=frames)
def test_every_frame_is_answered_and_the_socket_stays(viewer: Viewer, frame: str | bytes) -> None:
    answer = viewer.answer(frame)
    assert isinstance(answer, dict) and answer["type"] in ANSWERS, answer
    if answer["type"] == "error":
        assert answer.get("field") and answer.get("message"), answer
    # The same socket still serves a well-formed request.
    assert viewer.answer(json.dumps({"action": "stop"}))["type"] == "stopped"
    assert httpx.get(f"{viewer.url}/healthz", timeout=10).status_code == 200
