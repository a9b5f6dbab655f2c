"""The checked-in snapshot of tools/list, so a schema never changes unnoticed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp_tools.registry import get_registry
from mcp_tools.tool_listing import tool_definition

SNAPSHOT_PATH = Path(__file__).resolve().parent / "snapshots" / "tools.json"


def current_tools() -> list[dict[str, Any]]:
    return [tool_definition(op) for op in get_registry().all()]


def render(tools: list[dict[str, Any]]) -> str:
    return json.dumps(tools, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot_write() -> Path:
    SNAPSHOT_PATH.parent.mkdir(exist_ok=True)
    SNAPSHOT_PATH.write_text(render(current_tools()))
    return SNAPSHOT_PATH
