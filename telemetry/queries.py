"""Every telemetry query is built here, and every one is filtered to one tenant.

`TenantQuery` is the only way to read ClickHouse from the app: its SQL always starts with the
tenant condition, so a query without it cannot be built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smarteros.infra.clickhouse import clickhouse_client


class TelemetryUnavailable(Exception):
    """The telemetry store could not be queried."""


@dataclass
class TenantQuery:
    tenant: str
    window_minutes: int
    conditions: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tenant:
            raise ValueError("a telemetry query needs a tenant")
        self.params.update({"tenant": self.tenant, "window": int(self.window_minutes)})

    def where(self, condition: str, **params: Any) -> TenantQuery:
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def sql(
        self, select: str, *, table: str = "operation_calls", group_by: str = "", order_by: str = ""
    ) -> str:
        clauses = ["tenant = %(tenant)s", "time >= now() - %(window)s * 60", *self.conditions]
        # FINAL collapses rows the sink inserted twice (same event id) before counting.
        text = f"SELECT {select} FROM {table} FINAL WHERE " + " AND ".join(clauses)
        if group_by:
            text += f" GROUP BY {group_by}"
        if order_by:
            text += f" ORDER BY {order_by}"
        return text

    def run(self, select: str, **kwargs: str) -> list[tuple[Any, ...]]:
        sql = self.sql(select, **kwargs)
        try:
            client = clickhouse_client(timeout=3)
            try:
                return list(client.execute(sql, self.params))
            finally:
                client.disconnect()
        except Exception as exc:
            raise TelemetryUnavailable(
                f"telemetry store unavailable (ClickHouse): {type(exc).__name__}"
            ) from exc


def operation_stats(
    *, tenant: str, window_minutes: int, operation: str | None = None
) -> list[dict[str, Any]]:
    query = TenantQuery(tenant, window_minutes)
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
    rows = TenantQuery(tenant, window_minutes).run("count(), countIf(status != 'ok')")
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
