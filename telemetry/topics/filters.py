"""Server-side filters: only matching messages travel to the browser.

A filter has two optional parts, both must match:
- `q`: text, case-insensitive, searched in the key, the value (as JSON text) and header values;
  `key:abc`, `value:abc` or `header:abc` limit it to one part;
- `cel`: a CEL expression over `key` (string), `value` (the decoded JSON, or the text),
  `headers` (map of name to text), `partition`, `offset` and `timestamp` (ms), e.g.
  `value.data.total > 100 && headers["event-type"] == "shopify.webhook.received"`.
Both run on the masked record. The expression is compiled once per subscription; an expression
that does not compile is refused with the compiler's message, one that fails on a message (a
missing field) counts as no match, and its last error is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import cel

MAX_QUERY_CHARS = 500
MAX_CEL_CHARS = 2000


class FilterError(ValueError):
    """A filter the user must correct; `field` names the input ("q" or "cel")."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass
class MessageFilter:
    q: str = ""
    cel_source: str = ""
    program: Any = None
    runtime_errors: int = 0
    last_error: str = ""
    _scope: str = field(default="all")
    _needle: str = ""

    @property
    def active(self) -> bool:
        """False when the filter lets everything through (no need to decode records)."""
        return bool(self._needle) or self.program is not None

    def matches(self, record: dict[str, Any]) -> bool:
        if self._needle and not self._text_matches(record):
            return False
        if self.program is not None:
            try:
                return self.program.execute(cel_context(record)) is True
            except Exception as exc:  # the library raises builtin types for evaluation errors
                self.runtime_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                return False
        return True

    def _text_matches(self, record: dict[str, Any]) -> bool:
        needle = self._needle
        if self._scope in ("all", "key") and needle in (record.get("key") or "").lower():
            return True
        if self._scope in ("all", "header") and any(
            needle in f"{name}={value}".lower() for name, value in record.get("headers") or []
        ):
            return True
        if self._scope in ("all", "value"):
            value = record.get("value")
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if needle in (text or "").lower():
                return True
        return False

    def describe(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "cel": self.cel_source,
            "cel_errors": self.runtime_errors,
            "cel_last_error": self.last_error,
        }


def cel_context(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": record.get("key") or "",
        "value": record.get("value") if record.get("value") is not None else "",
        "headers": {name: value for name, value in record.get("headers") or []},
        "partition": record.get("partition", 0),
        "offset": record.get("offset", 0),
        "timestamp": record.get("timestamp", 0),
    }


def compile_filter(*, q: Any = "", cel_source: Any = "") -> MessageFilter:
    """Validate and compile a filter once, for a whole browse request or live subscription."""
    if not isinstance(q, str) or len(q) > MAX_QUERY_CHARS:
        raise FilterError("q", f"q must be text of at most {MAX_QUERY_CHARS} characters")
    if not isinstance(cel_source, str) or len(cel_source) > MAX_CEL_CHARS:
        raise FilterError("cel", f"cel must be text of at most {MAX_CEL_CHARS} characters")
    q, cel_source = q.strip(), cel_source.strip()
    result = MessageFilter(q=q, cel_source=cel_source)
    scope, sep, rest = q.partition(":")
    if sep and scope in ("key", "value", "header"):
        result._scope, result._needle = scope, rest.strip().lower()
    else:
        result._needle = q.lower()
    if cel_source:
        try:
            result.program = cel.compile(cel_source)
        except Exception as exc:
            raise FilterError("cel", str(exc)) from None
    return result
