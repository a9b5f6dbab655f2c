"""Telemetry records → ClickHouse rows, for the sink (telemetry/sink.py).

Well-formed records are decoded and type-checked in one pass in C (msgspec): no dict per record.
A record that does not match that schema takes the lenient path (the sink's original rules:
coerce what can be coerced); what still cannot be stored raises, for the dead-letter topic.
Values are checked against their ClickHouse types here: one bad value would otherwise fail its
whole batch's insert, retried forever.
"""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter
from typing import Annotated, Any

import msgspec
import orjson

COLUMNS = (
    "event_id",
    "time",
    "tenant",
    "operation",
    "service",
    "surface",
    "status",
    "error_type",
    "latency_ms",
    "input_bytes",
    "output_bytes",
    "model",
    "tokens_in",
    "tokens_out",
    "session_id",
    "trace_id",
)
# Token usage of every LLM reply (an operation's or an effect's), by provider and model.
USAGE_TYPE = "llm.usage"
USAGE_COLUMNS = (
    "event_id",
    "time",
    "tenant",
    "provider",
    "model",
    "origin",
    "tokens_in",
    "tokens_out",
    "trace_id",
)


UInt32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]


class _CallData(msgspec.Struct, gc=False):
    operation: str
    status: str
    service: str = ""
    surface: str = ""
    error_type: str = ""
    latency_ms: float = 0.0
    input_bytes: UInt32 = 0
    output_bytes: UInt32 = 0
    model: str = ""
    tokens_in: UInt32 = 0
    tokens_out: UInt32 = 0
    session_id: str = ""


class _UsageData(msgspec.Struct, gc=False):
    provider: str
    model: str
    tokens_in: UInt32
    tokens_out: UInt32
    origin: str = ""


class _Call(msgspec.Struct, tag_field="type", tag="operation.called", gc=False):
    id: str
    tenant: str
    time: str
    data: _CallData
    trace_id: str = ""


class _Usage(msgspec.Struct, tag_field="type", tag=USAGE_TYPE, gc=False):
    id: str
    tenant: str
    time: str
    data: _UsageData
    trace_id: str = ""


_decode = msgspec.json.Decoder(_Call | _Usage).decode


def epoch_seconds(time_text: str) -> int:
    """A ClickHouse DateTime (seconds since the epoch, UInt32) from an envelope time. Envelope
    times are always UTC ("...Z" or "+00:00"); DateTime has second precision. Passing the
    integer spares the driver a pytz conversion per row."""
    when = datetime.fromisoformat(time_text[:19]).replace(tzinfo=UTC)
    seconds = int(when.timestamp())
    if not 0 <= seconds <= 0xFFFFFFFF:
        raise ValueError(f"time outside ClickHouse DateTime: {time_text}")
    return seconds


def _uint32(value: Any) -> int:
    number = int(value)
    if not 0 <= number <= 0xFFFFFFFF:
        raise ValueError(f"{number} outside UInt32")
    return number


def usage_row(envelope: dict[str, Any]) -> tuple[Any, ...]:
    """One llm_usage row (in USAGE_COLUMNS order) from a decoded `llm.usage` envelope."""
    data = envelope["data"]
    return (
        str(envelope["id"]),
        epoch_seconds(envelope["time"]),
        str(envelope["tenant"]),
        str(data["provider"]),
        str(data["model"]),
        str(data.get("origin", "")),
        _uint32(data["tokens_in"]),
        _uint32(data["tokens_out"]),
        str(envelope.get("trace_id", "")),
    )


def call_row(envelope: dict[str, Any]) -> tuple[Any, ...]:
    """One operation_calls row (in COLUMNS order) from a decoded telemetry envelope."""
    data = envelope["data"]
    return (
        str(envelope["id"]),
        epoch_seconds(envelope["time"]),
        str(envelope["tenant"]),
        str(data["operation"]),
        str(data.get("service", "")),
        str(data.get("surface", "")),
        str(data["status"]),
        str(data.get("error_type", "")),
        float(data.get("latency_ms", 0)),
        _uint32(data.get("input_bytes", 0)),
        _uint32(data.get("output_bytes", 0)),
        str(data.get("model", "")),
        _uint32(data.get("tokens_in", 0)),
        _uint32(data.get("tokens_out", 0)),
        str(data.get("session_id", "")),
        str(envelope.get("trace_id", "")),
    )


def row_from_envelope(raw: bytes | None) -> tuple[Any, ...]:
    """One operation_calls row (in COLUMNS order) from a telemetry envelope."""
    return call_row(orjson.loads(raw or b""))


class Rows:
    """One batch's rows per table, built from raw records; what cannot be stored is returned to
    the caller (for the dead-letter topic) with the reason."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.usage: list[tuple[Any, ...]] = []
        self.read = 0  # records read, stored or dead-lettered
        self._seconds: dict[str, int] = {}  # records of one batch share few distinct seconds

    def add(self, raw: bytes | None) -> None:
        """Add one record; raises ValueError, KeyError or TypeError for a malformed one."""
        try:
            event = _decode(raw or b"")
        except msgspec.MsgspecError:
            self._add_lenient(raw)
            return
        second = event.time[:19]
        seconds = self._seconds.get(second)
        if seconds is None:
            seconds = self._seconds[second] = epoch_seconds(second)
        if isinstance(event, _Call):
            data = event.data
            self.calls.append(
                (
                    event.id,
                    seconds,
                    event.tenant,
                    data.operation,
                    data.service,
                    data.surface,
                    data.status,
                    data.error_type,
                    data.latency_ms,
                    data.input_bytes,
                    data.output_bytes,
                    data.model,
                    data.tokens_in,
                    data.tokens_out,
                    data.session_id,
                    event.trace_id,
                )
            )
        else:
            usage = event.data
            self.usage.append(
                (
                    event.id,
                    seconds,
                    event.tenant,
                    usage.provider,
                    usage.model,
                    usage.origin,
                    usage.tokens_in,
                    usage.tokens_out,
                    event.trace_id,
                )
            )

    def _add_lenient(self, raw: bytes | None) -> None:
        # Any type but llm.usage is an operation call; values are coerced as they always were.
        envelope = orjson.loads(raw or b"")
        if not isinstance(envelope, dict):
            raise TypeError(f"an envelope is a JSON object, not {type(envelope).__name__}")
        if envelope.get("type") == USAGE_TYPE:
            self.usage.append(usage_row(envelope))
        else:
            self.calls.append(call_row(envelope))


def as_columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns, for a columnar insert: the driver then writes each column in one call
    instead of picking every value out of every row. (Not zip(*rows): that makes an iterator per
    row, which the garbage collector promotes and then walks in full collections.)"""
    return [list(map(itemgetter(i), rows)) for i in range(width)]
