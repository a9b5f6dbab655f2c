"""A Kafka message as the viewer shows it: decoded, masked, JSON-ready."""

from __future__ import annotations

import json
from typing import Any

from telemetry.topics.masking import Masker

MAX_VALUE_CHARS = 64_000


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def message_record(message: Any, masker: Masker) -> dict[str, Any]:
    """The masked record of a confluent-kafka message: key, partition, offset, timestamp,
    headers, value (parsed JSON when it is JSON) and the envelope's summary fields."""
    raw_value = message.value()
    text = _text(raw_value)
    value: Any = text
    if text is not None and text[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "…"
    value = masker.envelope_value(value) if not isinstance(value, str) else masker.text(value)
    headers = masker.headers([(name, _text(raw) or "") for name, raw in (message.headers() or [])])
    key = _text(message.key())
    _, timestamp = message.timestamp()
    record: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp,
        "key": masker.text(key) if key is not None else None,
        "headers": headers,
        "value": value,
        "size": len(raw_value or b"") + len(message.key() or b""),
    }
    if isinstance(value, dict) and "type" in value and "data" in value:
        record["envelope"] = {
            "id": value.get("id"),
            "type": value.get("type"),
            "source": value.get("source"),
            "tenant": value.get("tenant"),
            "schema_version": value.get("schema_version"),
            "trace_id": value.get("trace_id"),
            "time": value.get("time"),
        }
    reason = next((v for k, v in headers if k == "dlq.reason"), None)
    if reason is not None:
        record["dlq_reason"] = reason
    return record
