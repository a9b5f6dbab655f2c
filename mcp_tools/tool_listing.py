"""How an Operation appears to MCP clients: one function, used by the server and the snapshot."""

from __future__ import annotations

from typing import Any

from mcp_tools.registry import Operation


def tool_definition(op: Operation) -> dict[str, Any]:
    """The tools/list entry of `op` in wire form (camelCase keys)."""
    return {
        "name": op.name,
        "title": op.title,
        "description": op.description,
        "inputSchema": op.input_schema(),
        "outputSchema": op.output_schema(),
        "annotations": op.annotations(),
    }
