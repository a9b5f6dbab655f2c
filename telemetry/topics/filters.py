"""Server-side filters: only matching messages travel to the browser.

A filter has two optional parts, both must match:
- `q`: text, case-insensitive, searched in the key, the value (as JSON text) and header values;
  `key:abc`, `value:abc` or `header:abc` limit it to one part;
- `cel`: a CEL expression over `key` (string), `value` (the decoded JSON, or the text),
  `headers` (map of name to text), `partition`, `offset` and `timestamp` (ms), e.g.
  `value.data.total > 100 && headers["event-type"] == "shopify.webhook.received"`.
Both run on the masked record. The expression goes through the bounded evaluator
(smarteros.infra.evaluator): checked against its limits and compiled once per subscription, then
evaluated in its worker processes within a CPU budget per message and per request. An expression
that does not compile or is over a limit is refused with a message naming the problem; one that
fails on a message (a missing field) counts as no match, and its last error is reported; one
that overruns its budget ends the request (FilterStopped).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smarteros.infra.evaluator import (
    Bindings,
    Budget,
    EvaluatorBusy,
    Expression,
    ExpressionError,
    compile_expression,
    off_loop,
    request_budget,
)

MAX_QUERY_CHARS = 500

# The variables an expression sees, from a record: (variable, record key, default, kind).
CEL_BINDINGS: Bindings = (
    ("key", "key", "", "value"),
    ("value", "value", "", "value"),
    ("headers", "headers", {}, "pairs"),
    ("partition", "partition", 0, "value"),
    ("offset", "offset", 0, "value"),
    ("timestamp", "timestamp", 0, "value"),
)


class FilterError(ValueError):
    """A filter the user must correct; `field` names the input ("q" or "cel")."""

    status = 400

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class FilterStopped(FilterError):
    """The expression was stopped while it ran (over its CPU budget, or no evaluator free)."""

    status = 422


@dataclass
class MessageFilter:
    q: str = ""
    cel_source: str = ""
    expression: Expression | None = None
    runtime_errors: int = 0
    last_error: str = ""
    _scope: str = field(default="all")
    _needle: str = ""

    @property
    def active(self) -> bool:
        """False when the filter lets everything through (no need to decode records)."""
        return bool(self._needle) or self.expression is not None

    def matches(self, record: dict[str, Any]) -> bool:
        """One record's verdict (tests and single lookups; scans use `select`)."""
        return self.select([record])[0]

    def select(self, records: Sequence[Any], *, budget: Budget | None = None) -> list[bool]:
        """A verdict per record (a dict, or its JSON text); blocks while a worker evaluates.
        FilterStopped when the expression overruns `budget` (a fresh request budget if None)."""
        verdicts = [True] * len(records)
        if self._needle:
            verdicts = [
                self._text_matches(orjson.loads(r) if isinstance(r, (str, bytes)) else r)
                for r in records
            ]
        if self.expression is None:
            return verdicts
        candidates = [r for r, ok in zip(records, verdicts, strict=True) if ok]
        try:
            selection = self.expression.select(candidates, budget=budget or request_budget())
        except EvaluatorBusy as exc:
            stopped = FilterStopped("cel", str(exc))
            stopped.status = 503
            raise stopped from None
        except ExpressionError as exc:
            raise FilterStopped("cel", str(exc)) from None
        self.runtime_errors += selection.errors
        if selection.last_error:
            self.last_error = selection.last_error
        chosen = iter(selection.verdicts)
        return [ok and next(chosen) for ok in verdicts]

    async def aselect(self, records: Sequence[Any], *, budget: Budget | None = None) -> list[bool]:
        """`select` for the event loop: decoding and waiting happen in the evaluator's threads."""
        return await off_loop(functools.partial(self.select, records, budget=budget))

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


def compile_filter(*, q: Any = "", cel_source: Any = "") -> MessageFilter:
    """Validate and compile a filter once, for a whole browse request or live subscription."""
    if not isinstance(q, str) or len(q) > MAX_QUERY_CHARS:
        raise FilterError("q", f"q must be text of at most {MAX_QUERY_CHARS} characters")
    if not isinstance(cel_source, str):
        raise FilterError("cel", "cel must be text")
    q, cel_source = q.strip(), cel_source.strip()
    result = MessageFilter(q=q, cel_source=cel_source)
    scope, sep, rest = q.partition(":")
    if sep and scope in ("key", "value", "header"):
        result._scope, result._needle = scope, rest.strip().lower()
    else:
        result._needle = q.lower()
    if cel_source:
        try:
            result.expression = compile_expression(cel_source, bindings=CEL_BINDINGS)
        except ExpressionError as exc:
            raise FilterError("cel", str(exc)) from None
    return result
