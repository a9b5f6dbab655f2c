"""The figures behind the console's charts, computed in ClickHouse and shaped for uPlot:
aligned series ([x, y1, y2, ...]) with one x axis of bucket start times."""

from __future__ import annotations

import time
from typing import Any

from telemetry.queries import BUCKETS, RANGES, TenantQuery, bucket_expression, reader

TOP_OPERATIONS = 8
TOP_TOPICS = 8
TOP_TENANTS = 8


def _axis(window: int, step: int) -> list[int]:
    end = int(time.time()) // step * step
    return list(range(end - (window // step) * step, end + step, step))


def _pivot(
    rows: list[tuple[Any, ...]], axis: list[int], names: list[str], value: int
) -> list[list[float | None]]:
    """Rows of (bucket, name, values...) into one series per name along the axis."""
    index = {x: i for i, x in enumerate(axis)}
    series: dict[str, list[float | None]] = {name: [None] * len(axis) for name in names}
    for row in rows:
        position = index.get(int(row[0]))
        if position is not None and row[1] in series:
            series[row[1]][position] = round(float(row[value]), 3)
    return [series[name] for name in names]


def chart_data(*, tenants: list[str], range_key: str) -> dict[str, Any]:
    """Everything the telemetry page draws, for `tenants` over `range_key` (a key of RANGES)."""
    with reader() as client:
        return _chart_data(client, tenants, range_key)


def _chart_data(client: Any, tenants: list[str], range_key: str) -> dict[str, Any]:
    window = RANGES[range_key]
    step = max(10, window // BUCKETS)
    axis = _axis(window, step)
    bucket = bucket_expression("time", step)
    calls = TenantQuery(tenants, window)
    per_tool = calls.run(
        client=client,
        select="operation, count(), countIf(status != 'ok'), quantile(0.5)(latency_ms), quantile(0.95)(latency_ms), "
        "quantile(0.99)(latency_ms)",
        group_by="operation",
        order_by="count() DESC, operation",
        limit=50,
    )
    top = [row[0] for row in per_tool[:TOP_OPERATIONS]]
    latency_rows = (
        calls.run(
            client=client,
            select=f"{bucket} AS b, operation, quantile(0.5)(latency_ms), quantile(0.95)(latency_ms), quantile(0.99)(latency_ms)",
            group_by="b, operation",
        )
        if top
        else []
    )
    volume = calls.run(
        client=client,
        select=f"{bucket} AS b, count(), countIf(status != 'ok')",
        group_by="b",
        order_by="b",
    )
    failed = TenantQuery(tenants, window).where("status != 'ok'")
    errors = (
        failed.run(
            client=client,
            select="error_type, count()",
            group_by="error_type",
            order_by="count() DESC",
            limit=20,
        )
        if any(r[2] for r in per_tool)
        else []
    )
    usage = TenantQuery(tenants, window, table="llm_usage")
    tokens = usage.run(
        client=client,
        select="provider, model, tenant, sum(tokens_in), sum(tokens_out)",
        group_by="provider, model, tenant",
        order_by="sum(tokens_in) + sum(tokens_out) DESC",
        limit=50,
    )
    token_rows = usage.run(
        client=client,
        select=f"{bucket} AS b, tenant, sum(tokens_in) + sum(tokens_out)",
        group_by="b, tenant",
    )
    token_totals: dict[str, float] = {}
    for row in token_rows:
        token_totals[row[1]] = token_totals.get(row[1], 0) + float(row[2])
    token_tenants = sorted(token_totals, key=lambda t: -token_totals[t])[:TOP_TENANTS]
    topics = TenantQuery(tenants, window, table="topic_messages", time_column="minute")
    topic_bucket = bucket_expression("minute", max(step, 60))
    topic_rows = topics.run(
        client=client, select=f"{topic_bucket} AS b, topic, sum(messages)", group_by="b, topic"
    )
    topic_totals: dict[str, float] = {}
    for row in topic_rows:
        topic_totals[row[1]] = topic_totals.get(row[1], 0) + float(row[2])
    top_topics = sorted(topic_totals, key=lambda t: -topic_totals[t])[:TOP_TOPICS]
    topic_axis = _axis(window, max(step, 60))
    volume_index = {int(r[0]): r for r in volume}
    return {
        "range": range_key,
        "tenants": tenants,
        "step_seconds": step,
        "empty": not per_tool and not topic_rows and not token_rows,
        "latency": {
            "operations": top,
            "p95": [axis, *_pivot(latency_rows, axis, top, 3)],
            "p50": [axis, *_pivot(latency_rows, axis, top, 2)],
            "p99": [axis, *_pivot(latency_rows, axis, top, 4)],
        },
        "volume": [
            axis,
            [float(volume_index[x][1]) if x in volume_index else None for x in axis],
            [
                round(100 * volume_index[x][2] / volume_index[x][1], 2)
                if x in volume_index
                else None
                for x in axis
            ],
        ],
        "tools": [
            {
                "operation": r[0],
                "calls": int(r[1]),
                "errors": int(r[2]),
                "error_rate": round(100 * r[2] / r[1], 2) if r[1] else 0.0,
                "p50_ms": round(float(r[3]), 2),
                "p95_ms": round(float(r[4]), 2),
                "p99_ms": round(float(r[5]), 2),
            }
            for r in per_tool
        ],
        "error_types": [{"error_type": r[0] or "(none)", "count": int(r[1])} for r in errors],
        "tokens": [
            {
                "provider": r[0],
                "model": r[1],
                "tenant": r[2],
                "tokens_in": int(r[3]),
                "tokens_out": int(r[4]),
            }
            for r in tokens
        ],
        # Tokens (input + output) per tenant per bucket: who spends the LLM budget, and when.
        "tokens_per_tenant": {
            "tenants": token_tenants,
            "series": [axis, *_pivot(token_rows, axis, token_tenants, 2)],
        },
        "topics": {
            "names": top_topics,
            "series": [topic_axis, *_pivot(topic_rows, topic_axis, top_topics, 2)],
        },
    }
