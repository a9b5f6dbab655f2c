"""JSON nested 100 to 10,000 levels deep, over /mcp and over stdio: a JSON-RPC error (400 on
HTTP), never a 500 or a RecursionError, and over stdio an answer rather than silence; the
session goes on."""

from __future__ import annotations

import json
import queue
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.fuzz.mcp_wire import PROTOCOL, NoAnswer, StdioWire

pytestmark = pytest.mark.django_db

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": PROTOCOL,
}
DEPTHS = (100, 250, 1_000, 5_000, 10_000)


def nested_call(depth: int) -> bytes:
    """A tools/call whose arguments nest `depth` levels of lists."""
    return (
        b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": '
        b'{"name": "tenant_get_tenant", "arguments": {"a": ' + b"[" * depth + b"]" * depth + b"}}}"
    )


def nested_body(depth: int) -> bytes:
    """A body that is nothing but `depth` levels of objects."""
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.fixture
def owner(make_tenant: Any) -> Any:
    return make_tenant(f"deep{secrets.token_hex(3)}", rate_limit=1_000_000)


def test_deep_json_over_http_is_a_json_rpc_error(web_server: str, owner: Any) -> None:
    headers = {**HEADERS, "Authorization": f"Bearer {owner.key}"}
    for depth in DEPTHS:
        for body in (nested_call(depth), nested_body(depth)):
            response = httpx.post(f"{web_server}/mcp", content=body, headers=headers, timeout=60)
            if depth <= 100 and body.startswith(b'{"jsonrpc"'):
                # Within the parser's reach: a tool result naming the nesting limit.
                assert response.status_code == 200, response.text
                continue
            assert response.status_code == 400, (depth, response.status_code, response.text)
            assert response.json()["error"]["code"] in (-32700, -32600, -32602), response.text
    ping = httpx.post(
        f"{web_server}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers=headers,
        timeout=60,
    )
    assert ping.status_code == 200 and ping.json()["result"] == {}


def answer_to(wire: StdioWire, request_id: Any, timeout: float = 30) -> dict[str, Any]:
    """The next message that answers `request_id` (a parse error answers id null)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = wire.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise NoAnswer(f"no answer to {request_id} (exit code {wire.process.poll()})") from None
        message = json.loads(raw)
        if isinstance(message, dict) and message.get("id") in (request_id, None):
            return message


def test_deep_json_over_stdio_is_answered_and_the_session_goes_on(
    server_env: dict[str, str], owner: Any
) -> None:
    wire = StdioWire(server_env, owner.key)
    try:
        for depth in DEPTHS:
            wire.write(nested_call(depth))
            answer = answer_to(wire, 7)
            if depth <= 100:
                # Within the parser's reach: a tool result naming the nesting limit.
                assert answer["result"]["isError"] is True, answer
                assert "nested deeper than" in answer["result"]["content"][0]["text"]
            else:
                assert answer["error"]["code"] == -32700, (depth, answer)
            pong, _ = wire.request("ping", timeout=30)
            assert pong.get("result") == {}, pong
        assert wire.alive()
    finally:
        wire.close()
