"""ClickHouse schema as numbered migrations, applied once each and recorded.

The SQL runs on Debian's ClickHouse 18.16 and on current releases: no TTL, no DateTime64, no
LowCardinality; per-tenant retention is enforced by the sink's partition pruning instead.
"""

from __future__ import annotations

from smarteros.infra.clickhouse import clickhouse_client, ensure_database

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "operation_calls",
        """
        CREATE TABLE IF NOT EXISTS operation_calls (
            event_id String,
            time DateTime,
            tenant String,
            operation String,
            service String,
            surface String,
            status String,
            error_type String,
            latency_ms Float64,
            input_bytes UInt32,
            output_bytes UInt32,
            model String,
            tokens_in UInt32,
            tokens_out UInt32,
            session_id String,
            trace_id String
        )
        ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMMDD(time)
        ORDER BY (tenant, time, event_id)
        """,
    ),
    (
        2,
        "topic_messages",
        """
        CREATE TABLE IF NOT EXISTS topic_messages (
            minute DateTime,
            tenant String,
            topic String,
            messages UInt64
        )
        ENGINE = SummingMergeTree(messages)
        PARTITION BY toYYYYMMDD(minute)
        ORDER BY (tenant, minute, topic)
        """,
    ),
    (
        3,
        "llm_usage",
        """
        CREATE TABLE IF NOT EXISTS llm_usage (
            event_id String,
            time DateTime,
            tenant String,
            provider String,
            model String,
            origin String,
            tokens_in UInt32,
            tokens_out UInt32,
            trace_id String
        )
        ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMMDD(time)
        ORDER BY (tenant, time, event_id)
        """,
    ),
]


def clickhouse_migrate() -> list[str]:
    """Apply missing migrations; returns the names applied in this run."""
    ensure_database()
    client = clickhouse_client()
    try:
        client.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
            "applied_at DateTime) ENGINE = MergeTree() ORDER BY version"
        )
        done = {row[0] for row in client.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            client.execute(sql)
            client.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES",
                [
                    {
                        "version": version,
                        "name": name,
                        "applied_at": __import__("datetime").datetime.now(),
                    }
                ],
            )
            applied.append(f"{version:04d}_{name}")
        return applied
    finally:
        client.disconnect()
