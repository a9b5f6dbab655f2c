"""Every tool's schema: linted for what LLM providers accept, and pinned by a snapshot."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mcp_tools.registry import Operation, get_registry, operation, register_temporarily
from mcp_tools.schemas import Empty, Output
from mcp_tools.snapshot import SNAPSHOT_PATH, current_tools, render

EXPECTED = {
    "shopify": {
        "process_webhook",
        "get_product",
        "update_inventory",
        "create_order",
        "sync_products",
    },
    "whatsapp": {
        "send_message",
        "send_template",  # added: the only message allowed outside the 24-hour window
        "process_inbound",
        "get_conversation",
        "create_bot_response",
    },
    "n8n": {"trigger_workflow", "get_execution", "list_workflows", "create_trigger"},
    "agent": {
        "execute_tool",
        "list_tools",
        "create_session",
        "get_telemetry",
        "register_mcp_server",
        "get_effect",  # added: the state of an outside effect a call recorded
    },
    "tenant": {
        "create_tenant",
        "get_tenant",
        "update_tenant",
        "provision_resources",
        "get_metrics",
    },
    "tools": {"search"},  # added: find a tool by what it does, ranked by the tenant's usage
}


def test_the_23_operations_of_the_design_and_the_added_ones_are_registered() -> None:
    names = {op.name for op in get_registry().all()}
    expected = {
        f"{service}_{action}" for service, actions in EXPECTED.items() for action in actions
    }
    assert names == expected
    assert len(names) == 26


def test_snapshot_matches_the_registry() -> None:
    assert SNAPSHOT_PATH.read_text() == render(current_tools()), (
        "tool schemas changed: run `manage.py tools_snapshot`, review the diff and commit it"
    )


def _undescribed(schema: dict[str, Any], where: str, defs: dict[str, Any]) -> list[str]:
    missing = []
    for name, prop in (schema.get("properties") or {}).items():
        if not prop.get("description"):
            missing.append(f"{where}.{name}")
        for ref in re.findall(r"#/\$defs/(\w+)", str(prop)):
            missing += _undescribed(defs[ref], f"{where}.{name}", defs)
    return missing


@pytest.mark.parametrize("tool", current_tools(), ids=lambda t: t["name"])
def test_schema_lint(tool: dict[str, Any]) -> None:
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool["name"])
    assert tool["title"] and tool["description"]
    for key in ("inputSchema", "outputSchema"):
        schema = tool[key]
        assert schema["type"] == "object", f"{key} root must be an object"
        assert "anyOf" not in schema and "oneOf" not in schema and "allOf" not in schema
        assert _undescribed(schema, key, schema.get("$defs", {})) == []
    assert tool["inputSchema"].get("additionalProperties") is False, (
        "unknown input fields must be rejected"
    )
    annotations = tool["annotations"]
    assert set(annotations) == {
        "title",
        "readOnlyHint",
        "destructiveHint",
        "idempotentHint",
        "openWorldHint",
    }


def test_tools_are_listed_in_a_stable_order() -> None:
    names = [t["name"] for t in current_tools()]
    assert names == sorted(names)


class _Out(Output):
    value: int


def test_register_temporarily_adds_and_removes() -> None:
    @operation(service="test", title="Temporary", permission="test.read", read_only=True)
    def temporary(ctx: Any, params: Empty) -> _Out:
        """A temporary operation."""
        return _Out(value=1)

    op = get_registry().get("test_temporary")
    assert isinstance(op, Operation) and op.read_only and op.idempotent
    get_registry().remove("test_temporary")
    with register_temporarily(op):
        assert get_registry().get("test_temporary") is op
    assert get_registry().get("test_temporary") is None


def test_an_operation_needs_a_description() -> None:
    with pytest.raises(ValueError, match="docstring"):

        @operation(service="test", title="No doc", permission="test.read")
        def undocumented(ctx: Any, params: Empty) -> _Out:
            return _Out(value=1)
