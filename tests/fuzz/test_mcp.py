"""Every tool called with arguments generated from its own inputSchema (hypothesis-jsonschema),
and with arbitrary JSON, over MCP stdio and HTTP: the answer is always a result, `isError` or
not, never a protocol error, and the server stays up. Garbage, malformed JSON-RPC and oversized
lines on stdio each get their error and the session goes on."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.fuzz.mcp_wire import PROTOCOL, StdioWire, http_message, http_request
from tests.fuzz.strategies import FUZZ, json_values, raw_bodies

pytestmark = pytest.mark.django_db

MAX_LINE = 4096


@pytest.fixture
def owner(make_tenant: Any) -> Any:
    """A tenant owner's key (every scope a tenant key carries), with an unreachable limit."""
    return make_tenant(f"mcpfz{secrets.token_hex(3)}", rate_limit=1_000_000)


@pytest.fixture
def wire(server_env: dict[str, str], owner: Any) -> Iterator[StdioWire]:
    session = StdioWire({**server_env, "MCP_STDIO_MAX_LINE_BYTES": str(MAX_LINE)}, owner.key)
    yield session
    session.close()


def tool_schemas(wire: StdioWire) -> dict[str, dict[str, Any]]:
    """Every tool the key may call (all pages of tools/list)."""
    schemas: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {}
    while True:
        answer, _ = wire.request("tools/list", params)
        schemas.update({tool["name"]: tool["inputSchema"] for tool in answer["result"]["tools"]})
        cursor = answer["result"].get("nextCursor")
        if not cursor:
            return schemas
        params = {"cursor": cursor}


def owner_tools() -> set[str]:
    """Every operation a tenant owner's key may call (all but the platform's)."""
    from mcp_tools.registry import get_registry
    from tenants.scopes import TENANT_OWNER_SCOPES, scope_allows

    return {op.name for op in get_registry().all() if scope_allows(TENANT_OWNER_SCOPES, op)}


def arguments_for(data: Any, schemas: dict[str, dict[str, Any]]) -> tuple[str, Any]:
    name = data.draw(st.sampled_from(sorted(schemas)), label="tool")
    arguments = data.draw(
        from_schema(schemas[name]) | st.dictionaries(st.text(max_size=12), json_values, max_size=5),
        label="arguments",
    )
    return name, arguments


def assert_tool_result(answer: dict[str, Any]) -> None:
    assert "error" not in answer, answer
    result = answer["result"]
    assert isinstance(result.get("isError", False), bool)
    assert result["content"], result


@FUZZ
@given(data=st.data())
def test_tool_calls_over_stdio_answer_results(wire: StdioWire, data: Any) -> None:
    schemas = tool_schemas(wire)
    assert set(schemas) == owner_tools()
    name, arguments = arguments_for(data, schemas)
    answer, _ = wire.request("tools/call", {"name": name, "arguments": arguments})
    assert_tool_result(answer)
    assert wire.process.poll() is None


@FUZZ
@given(data=st.data())
def test_tool_calls_over_http_answer_results(
    web_server: str, owner: Any, wire: StdioWire, data: Any
) -> None:
    name, arguments = arguments_for(data, tool_schemas(wire))
    response = http_request(
        web_server, owner.key, "tools/call", {"name": name, "arguments": arguments}
    )
    assert response.status_code == 200, response.text
    assert_tool_result(http_message(response))


def nested_json(*, max_depth: int) -> st.SearchStrategy[bytes]:
    """A JSON-RPC request whose params nest lists or objects up to `max_depth` deep (past the
    parsers' limits: pydantic-core's 200, json's ~1,000)."""
    return st.builds(
        lambda depth, objects: (
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": '
            + (b'{"a":' * depth + b"1" + b"}" * depth if objects else b"[" * depth + b"]" * depth)
            + b"}"
        ),
        st.integers(min_value=150, max_value=max_depth),
        st.booleans(),
    )


garbage_lines = st.one_of(
    st.binary(max_size=300).map(lambda raw: raw.replace(b"\n", b" ")),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values,
            "id": st.integers() | st.text(max_size=8) | json_values,
            "method": st.sampled_from(["tools/call", "tools/list", "ping", "initialize"])
            | st.text(max_size=20),
            "params": json_values,
        },
    ).map(lambda message: json.dumps(message).encode()),
    st.integers(min_value=MAX_LINE + 1, max_value=4 * MAX_LINE).map(
        lambda size: (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "' + b"x" * size + b'"}'
        )
    ),
    nested_json(max_depth=MAX_LINE // 2 - 100),
)


@FUZZ
@given(line=garbage_lines)
def test_garbage_on_stdio_gets_errors_and_the_session_goes_on(wire: StdioWire, line: bytes) -> None:
    wire.write(line)
    answer, before = wire.request("ping")
    assert answer.get("result") == {}, answer
    for message in before:
        # Whatever the line was, the server answered it as JSON-RPC: an error, or (for a line
        # that happened to be a valid request) that request's own answer.
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", message
    assert wire.process.poll() is None


http_bodies = st.one_of(raw_bodies, nested_json(max_depth=12_000), garbage_lines)


@FUZZ
@given(body=http_bodies)
def test_any_body_to_http_mcp_is_answered_without_a_5xx(
    web_server: str, owner: Any, body: bytes
) -> None:
    """Whatever is POSTed to /mcp (not JSON, not JSON-RPC, nested 10,000 deep) is answered by
    JSON-RPC, an error or a result, never a 5xx."""
    response = httpx.post(
        f"{web_server}/mcp",
        content=body,
        headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {owner.key}",
            "MCP-Protocol-Version": PROTOCOL,
        },
        timeout=60,
    )
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code != 202:  # a notification is accepted without a body
        message = http_message(response)
        assert message.get("jsonrpc") == "2.0" and ("error" in message or "result" in message)
