"""Template filters of the console."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict) and set(value) == {"from", "to"}:
        # A field an admin changed.
        return f"{_text(value['from'])} → {_text(value['to'])}"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def as_fields(details: Any) -> list[tuple[str, str]]:
    """An audit entry's details as (name, readable value) pairs, not a Python dict's repr."""
    if not details:
        return []
    if not isinstance(details, dict):
        return [("", _text(details))]
    return [(str(key).replace("_", " "), _text(value)) for key, value in details.items()]
