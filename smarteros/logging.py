"""Log formatting: JSON lines in production, readable text locally; tenant and trace id in both."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from smarteros.context import current_tenant_slug, current_trace_id
from smarteros.scrub import scrub_text

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Adds `tenant` and `trace_id` to every record, and masks secrets in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = getattr(record, "tenant", None) or current_tenant_slug.get() or "-"
        record.trace_id = getattr(record, "trace_id", None) or current_trace_id.get() or "-"
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = scrub_text(str(record.msg))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
