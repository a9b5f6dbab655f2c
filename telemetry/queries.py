"""Every telemetry query is built here, and every one is filtered to tenants.

`TenantQuery` is the only way the app reads ClickHouse: it cannot be built without at least one
tenant, and its SQL always starts with the tenant condition. Queries run with readonly=1, so even
a bug here cannot write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from smarteros.infra.clickhouse import clickhouse_client

RANGES = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 86400,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
}
BUCKETS = 60  # points per series


class TelemetryUnavailable(Exception):
    """The telemetry store could not be queried."""


@dataclass
class TenantQuery:
    tenants: list[str]
    window_seconds: int
    table: str = "operation_calls"
    time_column: str = "time"
    conditions: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tenants or not all(self.tenants):
            raise ValueError("a telemetry query needs at least one tenant")
        self.params.update({"tenants": tuple(self.tenants), "window": int(self.window_seconds)})

    def where(self, condition: str, **params: Any) -> TenantQuery:
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def sql(
        self, select: str, *, group_by: str = "", order_by: str = "", limit: int | None = None
    ) -> str:
        clauses = [
            "tenant IN %(tenants)s",
            f"{self.time_column} >= now() - %(window)s",
            *self.conditions,
        ]
        # No FINAL: the sink never inserts an event id twice (see TelemetrySink.insert), and
        # FINAL would make every query single-threaded on older ClickHouse.
        text = f"SELECT {select} FROM {self.table} WHERE " + " AND ".join(clauses)
        if group_by:
            text += f" GROUP BY {group_by}"
        if order_by:
            text += f" ORDER BY {order_by}"
        if limit:
            text += f" LIMIT {int(limit)}"
        return text

    def run(self, select: str, *, client: Any = None, **kwargs: Any) -> list[tuple[Any, ...]]:
        """Run the query; pass `client` (from `reader()`) to share one connection between queries."""
        sql = self.sql(select, **kwargs)
        try:
            if client is not None:
                return list(client.execute(sql, self.params, settings={"readonly": 1}))
            with reader() as own:
                return list(own.execute(sql, self.params, settings={"readonly": 1}))
        except TelemetryUnavailable:
            raise
        except Exception as exc:
            raise TelemetryUnavailable(
                f"telemetry store unavailable (ClickHouse): {type(exc).__name__}"
            ) from exc


@contextlib.contextmanager
def reader() -> Iterator[Any]:
    """A connection to the telemetry store as the reading user."""
    client = clickhouse_client(timeout=3, url=settings.CLICKHOUSE_READ_URL)
    try:
        yield client
    finally:
        client.disconnect()


def bucket_expression(column: str, step: int) -> str:
    # Portable bucketing: toStartOfInterval is missing from older ClickHouse releases.
    return f"intDiv(toUInt32({column}), {int(step)}) * {int(step)}"


def operation_stats(
    *, tenant: str, window_minutes: int, operation: str | None = None
) -> list[dict[str, Any]]:
    query = TenantQuery([tenant], window_minutes * 60)
    if operation:
        query.where("operation = %(operation)s", operation=operation)
    rows = query.run(
        "operation, count(), countIf(status != 'ok'), quantile(0.5)(latency_ms), "
        "quantile(0.95)(latency_ms), sum(tokens_in), sum(tokens_out)",
        group_by="operation",
        order_by="count() DESC, operation",
    )
    return [
        {
            "operation": r[0],
            "calls": int(r[1]),
            "errors": int(r[2]),
            "p50_ms": round(float(r[3]), 3),
            "p95_ms": round(float(r[4]), 3),
            "tokens_in": int(r[5]),
            "tokens_out": int(r[6]),
        }
        for r in rows
    ]


def call_totals(*, tenant: str, window_minutes: int) -> tuple[int, int]:
    rows = TenantQuery([tenant], window_minutes * 60).run("count(), countIf(status != 'ok')")
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def trace_calls(*, tenants: list[str], trace_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """The operation calls of one trace among `tenants` (last 30 days), oldest first: where the
    topic viewer's trace links lead."""
    rows = (
        TenantQuery(tenants, RANGES["30d"])
        .where("trace_id = %(trace_id)s", trace_id=trace_id)
        .run(
            "time, tenant, operation, surface, status, error_type, latency_ms",
            order_by="time",
            limit=limit,
        )
    )
    return [
        {
            "time": r[0],
            "tenant": r[1],
            "operation": r[2],
            "surface": r[3],
            "status": r[4],
            "error_type": r[5],
            "latency_ms": round(float(r[6]), 3),
        }
        for r in rows
    ]
