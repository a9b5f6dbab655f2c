"""A tools/call whose arguments are not an object (or whose name is not a string) is answered
-32602 naming the field and the rule, over HTTP and stdio alike; the SDK alone said only
"Invalid request parameters" with empty data."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from mcp_tools.stdio_pipes import line_refusal

pytestmark = pytest.mark.django_db(transaction=True)


def call(params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}


CASES = [
    ({"name": "tenant_get_tenant", "arguments": "x"}, "arguments", "not a string"),
    ({"name": "tenant_get_tenant", "arguments": [1]}, "arguments", "not an array"),
    ({"name": "tenant_get_tenant", "arguments": 3}, "arguments", "not a number"),
    ({"name": 5, "arguments": {}}, "name", "must be a tool's name"),
]


@pytest.mark.parametrize(("params", "field", "says"), CASES)
def test_stdio_lines_are_answered_naming_the_field(params: Any, field: str, says: str) -> None:
    answer = line_refusal(json.dumps(call(params)))
    assert answer is not None and answer["id"] == 7
    assert answer["error"]["code"] == -32602 and answer["error"]["data"] == {"field": field}
    assert (
        answer["error"]["message"].startswith(f"{field}: ") and says in answer["error"]["message"]
    )
    assert line_refusal(json.dumps(call({"name": "tenant_get_tenant", "arguments": {}}))) is None


def test_http_answers_naming_the_field(web_server: str, make_tenant: Any) -> None:
    tenant = make_tenant(f"cp{secrets.token_hex(3)}")
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-11-25",
        "Authorization": f"Bearer {tenant.key}",
    }
    for params, field, says in CASES:
        answer = httpx.post(f"{web_server}/mcp", json=call(params), headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        error = answer.json()["error"]
        assert error["code"] == -32602 and error["data"] == {"field": field}
        assert says in error["message"]
    fine = httpx.post(
        f"{web_server}/mcp",
        json=call({"name": "tenant_get_tenant", "arguments": {}}),
        headers=headers,
        timeout=10,
    )
    assert fine.status_code == 200 and "result" in fine.text
