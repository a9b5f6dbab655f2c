"""Untrusted JSON from providers, made safe before anything reads it.

PostgreSQL refuses NUL characters and lone surrogates in text and jsonb, Python's parser
recurses once per nesting level, and `NaN` is not JSON: each of these is refused here as a
BadPayload naming where it is, so it never reaches the database as a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class BadPayload(ValueError):
    """A body or header that cannot be used; the message names the field."""


def _refuse_constant(name: str) -> Any:
    raise BadPayload(f"body: {name} is not a JSON number")


def json_load_untrusted(raw: bytes, *, max_depth: int) -> Any:
    """Parse `raw` as JSON and check every string and the nesting depth."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadPayload(f"body: JSON nested deeper than {max_depth} levels") from None
    except BadPayload:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise BadPayload(f"body: not valid JSON ({exc})") from None
    json_check(value, max_depth=max_depth)
    return value


def json_check(value: Any, *, max_depth: int) -> None:
    """Refuse nesting deeper than `max_depth` and strings PostgreSQL cannot store."""
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(value, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise BadPayload(f"{_path(path)}: nested deeper than {max_depth} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str):
                    _check_text(key, (*path, key), "key")
                stack.append((child, (*path, key), depth + 1))
        elif isinstance(node, str):
            _check_text(node, path, "value")


def _check_text(text: str, path: tuple[Any, ...], what: str) -> None:
    if "\x00" in text:
        raise BadPayload(f"{_path(path)}: the {what} contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadPayload(f"{_path(path)}: the {what} is not valid Unicode") from None


def _path(path: tuple[Any, ...]) -> str:
    out = "body"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{_key_shown(part)}"
    return out


KEY_SHOWN_CHARS = 80


def _key_shown(key: object) -> str:
    """A sender's key as an error message or log line may show it: unprintable characters
    (NUL, line breaks, which would forge log lines) escaped, and cut to KEY_SHOWN_CHARS."""
    text = str(key)
    shown = "".join(
        ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text[:KEY_SHOWN_CHARS]
    )
    return shown + ("…" if len(text) > KEY_SHOWN_CHARS else "")


def model_parse(model: type[M], data: Any, *, names: Mapping[str, str] | None = None) -> M:
    """Validate `data` as `model`; a BadPayload names each wrong field (renamed by `names`,
    e.g. a header for the field it fills)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = [_key_shown(p) for p in error["loc"]]
            field = (names or {}).get(loc[0], "") if loc else ""
            where = field or ".".join(["body", *loc])
            if field and len(loc) > 1:
                where = ".".join([field, *loc[1:]])
            problems.append(f"{where}: {error['msg']}")
        raise BadPayload("; ".join(problems)) from None
