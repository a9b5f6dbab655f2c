"""The executor: the one path every operation call takes, whatever the surface.

authenticate (done by the surface) -> permission -> rate limit -> validate input -> run in a
transaction scoped to the tenant (RLS) -> validate output -> record telemetry -> map errors.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from pydantic import BaseModel, ValidationError

from mcp_tools.context import OperationContext, Principal, ProgressFn
from mcp_tools.registry import Operation, get_registry
from mcp_tools.schemas import is_variant
from smarteros.context import bound, current_trace_id, new_trace_id
from smarteros.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidInput,
    OperationError,
    PermissionDenied,
    RateLimited,
    UnknownOperation,
)
from smarteros.events.emitted import emitted_event_types
from smarteros.js_numbers import js_safe
from smarteros.tracing import operation_span
from telemetry.recording import operation_call_record
from tenants.audit import audit_record
from tenants.ratelimit import rate_limit_hit
from tenants.scope import tenant_read_scope, tenant_scope
from tenants.scopes import scope_allows, scope_missing_message

log = logging.getLogger(__name__)

UNKNOWN_OPERATION_BUCKET = "(unknown tool)"


@dataclass
class CallResult:
    """The outcome of one call: `output` on success (and `output_json`, its JSON text, encoded
    once for every surface and telemetry to reuse), `error` otherwise."""

    operation: str
    output: dict[str, Any] | None = None
    output_json: str = ""
    error: OperationError | None = None
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def may_call(principal: Principal, op: Operation) -> bool:
    """Whether the key's scopes allow this operation (used for listing and for calling): `*`
    covers ordinary permissions only; admin and platform scopes are granted by name."""
    return scope_allows(principal.scopes(), op)


def visible_operations(principal: Principal) -> list[Operation]:
    return [op for op in get_registry().all() if may_call(principal, op)]


def _unknown_tool_message(name: str, principal: Principal) -> str:
    """`unknown tool: x`, with the closest tool names this key may call as a suggestion."""
    known = [op.name for op in visible_operations(principal)]
    close = difflib.get_close_matches(name[:100], known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; tools/list names them"
    return f"unknown tool: {name[:100]}{hint}"


def execute(
    name: str,
    arguments: dict[str, Any] | None,
    *,
    principal: Principal,
    surface: str,
    progress: ProgressFn | None = None,
    context: OperationContext | None = None,
    refusal: OperationError | None = None,
) -> CallResult:
    """Run operation `name` for `principal`; never raises an OperationError, returns it.

    A surface that refuses the request before it has arguments (an unparseable or oversized
    body) passes `refusal`: the call is then counted by the rate limit and recorded in telemetry
    like any other refused call, and nothing runs."""
    ctx = context or OperationContext(
        principal=principal, surface=surface, trace_id=current_trace_id.get() or new_trace_id()
    )
    ctx.progress = ctx.progress or progress
    started = time.perf_counter()
    too_deep = _deeper_than(arguments, settings.OPERATION_MAX_INPUT_DEPTH)
    raw_size = 0 if too_deep else _json_size(arguments)
    result = CallResult(operation=name)
    op = get_registry().get(name)
    with (
        bound(tenant_slug=principal.tenant.slug, trace_id=ctx.trace_id),
        operation_span(
            name,
            trace_id=ctx.trace_id,
            attributes={"smarteros.tenant": principal.tenant.slug, "smarteros.surface": surface},
        ) as span,
    ):
        try:
            # First, so that refused calls (unknown tool, bad input) count against the limit too.
            _check_rate_limit(principal)
            if refusal is not None:
                raise refusal
            if op is None:
                raise UnknownOperation(_unknown_tool_message(name, principal))
            if not may_call(principal, op):
                # The tool list is public (it is the product's schema); what helps is naming
                # the scope the key lacks, so a person can issue the right key.
                raise PermissionDenied(scope_missing_message(op, principal.tenant.slug))
            if too_deep:
                raise InvalidInput(
                    f"(root): input is nested deeper than {settings.OPERATION_MAX_INPUT_DEPTH} "
                    "levels"
                )
            params = _validate_input(op, arguments, raw_size)
            output = _run(op, ctx, params)
            dumped = output.model_dump(mode="json")
            # Passed-through provider data may hold ids beyond 2^53 (Shopify's): JavaScript
            # clients would round them, so they leave as strings.
            result.output = js_safe(dumped)
            result.output_json = (
                output.model_dump_json()
                if result.output is dumped
                else json.dumps(result.output, separators=(",", ":"), ensure_ascii=False)
            )
        except OperationError as exc:
            result.error = exc
        except DataError as exc:
            # The database refused a value the schema let through: the client's input, not an
            # outage (no 503, no alert).
            log.warning("database refused input of %s: %s", name, exc)
            result.error = data_error_as_invalid_input(exc, arguments)
        except IntegrityError as exc:
            log.warning("integrity error in %s: %s", name, exc)
            result.error = Conflict(f"{name}: the change conflicts with existing data")
        except (OperationalError, InterfaceError) as exc:
            log.exception("database unavailable in %s", name)
            result.error = DependencyUnavailable(f"PostgreSQL is unavailable: {type(exc).__name__}")
        except DatabaseError as exc:
            log.exception("database error in %s", name)
            result.error = OperationError(f"internal error in {name}: {type(exc).__name__}")
        except Exception as exc:
            log.exception("operation %s failed", name)
            result.error = OperationError(f"internal error in {name}: {type(exc).__name__}")
        result.latency_ms = (time.perf_counter() - started) * 1000
        if span is not None:
            span.set_attribute("smarteros.status", "ok" if result.ok else "error")
            if result.error is not None:
                span.set_attribute("smarteros.error_type", result.error.code)
        _record(op, name, ctx, result, raw_size)
    return result


def _json_size(arguments: Any) -> int:
    try:
        return len(json.dumps(arguments or {}, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        return 0


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON-like `value` nests more than `limit` levels (iterative: no recursion)."""
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict | list):
            if depth > limit:
                return True
            children = current.values() if isinstance(current, dict) else current
            pending.extend((child, depth + 1) for child in children)
    return False


_TOO_LONG = re.compile(r"value too long for type character varying\((\d+)\)")


def data_error_as_invalid_input(exc: DataError, arguments: Any) -> InvalidInput:
    """The InvalidInput for a value the database refused, naming the fields that can have
    caused it (those holding a NUL, or a string longer than the column's limit)."""
    text = str(exc)
    too_long = _TOO_LONG.search(text)
    if too_long:
        limit = int(too_long.group(1))
        fields = _string_fields(arguments, lambda s: len(s) > limit)
        rule, message = "string_too_long", f"at most {limit} characters are stored"
    elif "NUL" in text or "0x00" in text:
        fields = _string_fields(arguments, lambda s: "\x00" in s)
        rule, message = "string_nul", "must not contain NUL characters"
    else:
        fields, rule, message = [], "invalid_value", "a value is not accepted by the database"
    details: list[dict[str, object]] = [
        {"field": field, "rule": rule, "message": message} for field in fields or ["(unknown)"]
    ]
    names = ", ".join(str(d["field"]) for d in details)
    return InvalidInput(f"{names}: {message} ({rule})", details=details)


def _string_fields(value: Any, test: Any, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [path or "(root)"] if test(value) else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _string_fields(child, test, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _string_fields(child, test, f"{path}.{index}" if path else str(index))
    return found


def _validate_input(op: Operation, arguments: dict[str, Any] | None, size: int) -> BaseModel:
    if size > settings.OPERATION_MAX_INPUT_BYTES:
        raise InvalidInput(
            f"input is {size} bytes; the limit is {settings.OPERATION_MAX_INPUT_BYTES} bytes"
        )
    if arguments is not None and not isinstance(arguments, dict):
        raise InvalidInput("arguments must be a JSON object")
    try:
        return op.input_model.model_validate(arguments or {})
    except ValidationError as exc:
        raise InvalidInput(validation_summary(exc), details=validation_details(exc)) from None


def validation_details(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"] if not is_variant(p)) or "(root)",
            "rule": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False)
    ]


def validation_summary(exc: ValidationError) -> str:
    parts = [f"{d['field']}: {d['message']} ({d['rule']})" for d in validation_details(exc)]
    return "; ".join(parts)


def _check_rate_limit(principal: Principal) -> None:
    tenant = principal.tenant
    decision = rate_limit_hit(tenant_slug=tenant.slug, limit=tenant.rate_limit_per_minute)
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {decision.limit} requests per minute reached for tenant {tenant.slug}; "
            f"retry after {decision.retry_after}s",
            retry_after=decision.retry_after,
        )


def _run(op: Operation, ctx: OperationContext, params: BaseModel) -> BaseModel:
    if not op.atomic:
        # Its own short transactions: nothing held open while it pages or calls out, and what a
        # step recorded stays when a later one fails. Each statement still carries the tenant.
        with tenant_read_scope(ctx.tenant.pk), emitted_event_types() as emitted:
            output = op.func(ctx, params)
        _check_emits(op, emitted)
        with tenant_scope(ctx.tenant.pk):
            _audit(op, ctx, params)
    else:
        scope = tenant_read_scope if op.read_only else tenant_scope
        with scope(ctx.tenant.pk), emitted_event_types() as emitted:
            output = op.func(ctx, params)
            _check_emits(op, emitted)
            if not op.read_only:
                # In the same transaction as the change: no change without its audit record.
                _audit(op, ctx, params)
    if not isinstance(output, op.output_model):
        try:
            output = op.output_model.model_validate(output)
        except ValidationError as exc:
            log.error("%s returned output that breaks its schema: %s", op.name, exc)
            raise OperationError(f"{op.name} produced invalid output") from None
    return output


def _check_emits(op: Operation, emitted: list[str]) -> None:
    """An operation publishes only the event types it declares (`emits`). Outside production a
    breach fails the call, so the suite finds it; in production it is logged and the call stands."""
    undeclared = sorted(set(emitted) - set(op.emits))
    if not undeclared:
        return
    message = f"{op.name} emitted undeclared event type(s) {', '.join(undeclared)}"
    if settings.OPERATION_EMITS_STRICT:
        raise OperationError(f"{message}: add them to its emits=")
    log.error("%s", message)


def _audit(op: Operation, ctx: OperationContext, params: BaseModel) -> None:
    audit_record(
        actor=f"key:{ctx.principal.api_key.prefix}",
        action=op.name,
        tenant=ctx.tenant,
        target=ctx.tenant.slug,
        details={
            "surface": ctx.surface,
            "trace_id": ctx.trace_id,
            "arguments": sorted(params.model_fields_set),
        },
    )


def _record(
    op: Operation | None, name: str, ctx: OperationContext, result: CallResult, in_bytes: int
) -> None:
    try:
        # Only registered names become series: a client's made-up names (any length, any
        # number of them) are counted under one bucket instead of growing the charts.
        operation_call_record(
            operation=op.name if op else UNKNOWN_OPERATION_BUCKET,
            service=op.service if op else "unknown",
            ctx=ctx,
            status="ok" if result.ok else "error",
            error_type=result.error.code if result.error else "",
            latency_ms=result.latency_ms,
            input_bytes=in_bytes,
            output_bytes=len(result.output_json.encode()),
        )
    except Exception:
        # Telemetry must never fail the call it describes.
        log.exception("could not record telemetry for %s", name)
