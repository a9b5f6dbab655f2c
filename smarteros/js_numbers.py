"""Integers a JavaScript consumer would round, as strings.

JSON numbers are read as IEEE doubles by JavaScript (n8n, browsers, most MCP clients): an
integer beyond 2^53 - 1 silently changes (Shopify order id 820982911946154508 arrives as
820982911946154500). Python keeps it exact, so the platform converts such integers to their
decimal string where data leaves as JSON for such a consumer, and nowhere else.
"""

from __future__ import annotations

from typing import Any

JS_MAX_SAFE_INTEGER = 2**53 - 1


def js_safe(value: Any) -> Any:
    """`value` with every int outside +-(2^53 - 1) in dicts and lists turned into its decimal
    string. Returns `value` itself (no copy) when there is none, which is the common case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > JS_MAX_SAFE_INTEGER else value
    if isinstance(value, dict):
        converted = {k: js_safe(v) for k, v in value.items()}
        return value if all(converted[k] is value[k] for k in value) else converted
    if isinstance(value, list | tuple):
        items = [js_safe(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value
