"""A websocket of the topic viewer against the real ASGI app (Channels, real Redis layer)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from smarteros.asgi import application


class WebsocketCommunicator(ApplicationCommunicator):  # type: ignore[misc]
    """Channels' communicator without `channels.testing`, which imports daphne (not installed)."""

    def __init__(self, app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
        }
        super().__init__(app, scope)

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, response.get("subprotocol")

    async def send_json_to(self, data: Any) -> None:
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout: float = 1) -> Any:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 5) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


# Every socket opened by the running scenario: run_sockets ends each one in the scenario's loop.
_OPEN: list[WebsocketCommunicator] = []


T = TypeVar("T")


def run_sockets(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run `scenario` and then disconnect every socket it opened and left open (one the server
    closed included: its application still runs until it hears the disconnect). Left to the
    loop's shutdown, such an application's cancellation can hang the test run for good."""

    async def scenario_then_disconnect() -> T:
        try:
            return await scenario()
        finally:
            while _OPEN:
                socket = _OPEN.pop()
                if not socket.future.done():
                    await socket.disconnect(timeout=2)

    return async_to_sync(scenario_then_disconnect)()


async def open_socket(cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    socket = WebsocketCommunicator(application, "/ws/topics/", headers=headers)
    _OPEN.append(socket)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    return socket


async def receive(socket: WebsocketCommunicator, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = await socket.receive_json_from(timeout=timeout)
    return message


async def until(socket: WebsocketCommunicator, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next frame of type `kind`, skipping others (progress, paused...)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind!r} frame within {timeout}s")
        message = await receive(socket, timeout=left)
        if message["type"] == kind:
            return message
        if message["type"] == "error" and kind != "error":
            raise AssertionError(f"error frame: {message}")


async def collect(socket: WebsocketCommunicator, seconds: float) -> list[dict[str, Any]]:
    """Every frame that arrives within `seconds` (polling: a receive that times out would cancel
    the application)."""
    frames = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if socket.output_queue.empty():
            await asyncio.sleep(0.02)
            continue
        frames.append(await receive(socket))
    return frames
