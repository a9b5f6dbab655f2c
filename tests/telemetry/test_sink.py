"""Real MCP and REST calls end up in ClickHouse, exactly once each, across a ClickHouse restart."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from smarteros.infra.clickhouse import clickhouse_client
from telemetry.queries import TelemetryUnavailable, TenantQuery
from telemetry.schema import clickhouse_migrate
from telemetry.sink import TelemetrySink
from tests.conftest import wait_for
from tests.mcp_tools.clients import http_client, stdio_client
from tests.processes import ClickHouseServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clickhouse(settings: Any) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer()
    server.start()
    settings.CLICKHOUSE_URL = settings.CLICKHOUSE_READ_URL = server.url
    clickhouse_migrate()
    yield server
    server.remove()


def rows_for(tenant: str) -> list[tuple[Any, ...]]:
    client = clickhouse_client()
    try:
        return list(
            client.execute(
                "SELECT operation, surface, status, error_type, latency_ms, input_bytes, output_bytes, trace_id, event_id "
                "FROM operation_calls WHERE tenant = %(t)s ORDER BY time, operation",
                {"t": tenant},
            )
        )
    finally:
        client.disconnect()


def test_calls_reach_clickhouse_once_across_a_restart(
    clickhouse: ClickHouseServer,
    make_tenant: Any,
    web_server: str,
    server_env: dict[str, str],
    settings: Any,
) -> None:
    tk = make_tenant(f"tel{secrets.token_hex(3)}")
    sink = TelemetrySink(
        batch_size=50, batch_seconds=0.5, **{"group.id": f"sink-test-{secrets.token_hex(4)}"}
    )
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    headers = {"Authorization": f"Bearer {tk.key}"}

    def rest(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{web_server}/api/v1/{path}", json=body, headers=headers)

    async def mcp_calls() -> None:
        async with http_client(web_server, tk.key) as client:
            await client.call_tool("tenant_get_tenant", {})
            await client.call_tool("tenant_get_metrics", {"window_minutes": 0})  # isError
        async with stdio_client(server_env, tk.key) as client:
            await client.call_tool("agent_create_session", {"label": "telemetry test"})

    try:
        assert rest("tenant/get_tenant", {}).status_code == 200
        assert rest("tenant/update_tenant", {"plan": "gold"}).status_code == 422
        anyio.run(mcp_calls)
        wait_for(lambda: len(rows_for(tk.tenant.slug)) == 5, timeout=60)

        clickhouse.stop()  # calls keep working; their telemetry waits in Kafka
        assert rest("tenant/get_tenant", {}).status_code == 200
        assert (
            rest("agent/create_session", {"label": "while ClickHouse is down"}).status_code == 200
        )
        with pytest.raises(TelemetryUnavailable):
            TenantQuery([tk.tenant.slug], 3600).run("count()")
        chart = httpx.get(f"{web_server}/readyz").json()
        assert "clickhouse" not in chart["down"]  # the web server watches the shared one
        clickhouse.start()
        wait_for(lambda: len(rows_for(tk.tenant.slug)) == 7, timeout=90)
    finally:
        sink.stop()
        thread.join(timeout=30)

    rows = rows_for(tk.tenant.slug)
    assert len({r[8] for r in rows}) == 7
    summary = sorted((r[0], r[1], r[2], r[3]) for r in rows)
    assert summary == sorted(
        [
            ("tenant_get_tenant", "rest", "ok", ""),
            ("tenant_update_tenant", "rest", "error", "invalid_input"),
            ("tenant_get_tenant", "mcp-http", "ok", ""),
            ("tenant_get_metrics", "mcp-http", "error", "invalid_input"),
            ("agent_create_session", "mcp-stdio", "ok", ""),
            ("tenant_get_tenant", "rest", "ok", ""),
            ("agent_create_session", "rest", "ok", ""),
        ]
    )
    for operation, _, status, _, latency, in_bytes, out_bytes, trace_id, _ in rows:
        assert latency > 0 and len(trace_id) == 32
        assert in_bytes >= 2 and (out_bytes > 0) == (status == "ok"), operation


def test_every_query_is_tenant_filtered() -> None:
    with pytest.raises(ValueError, match="at least one tenant"):
        TenantQuery([], 3600)
    with pytest.raises(ValueError, match="at least one tenant"):
        TenantQuery([""], 3600)
    sql = (
        TenantQuery(["acme"], 60)
        .where("operation = %(o)s", o="x")
        .sql("count()", group_by="operation")
    )
    assert sql.startswith("SELECT count() FROM operation_calls WHERE tenant IN %(tenants)s AND ")


def test_telemetry_queries_are_read_only(settings: Any) -> None:
    from telemetry.queries import TelemetryUnavailable as Unavailable

    query = TenantQuery(["acme"], 60)
    query.sql = lambda *a, **k: "CREATE TABLE should_not_exist (x UInt8) ENGINE = Memory"  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        query.run("count()")
    client = clickhouse_client()
    try:
        assert client.execute("EXISTS TABLE should_not_exist")[0][0] == 0
    finally:
        client.disconnect()


def test_retention_trims_each_tenant_to_its_plan(
    clickhouse: ClickHouseServer, make_tenant: Any
) -> None:
    from datetime import datetime, timedelta

    from telemetry.retention import telemetry_retention_enforce
    from telemetry.sink import COLUMNS
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    free, pro = make_tenant("freeshop").tenant, make_tenant("proshop").tenant
    with dangerously_unscoped():
        Tenant.objects.filter(pk=free.pk).update(plan="free")
        Tenant.objects.filter(pk=pro.pk).update(plan="pro")
    now = datetime.utcnow().replace(microsecond=0)
    rows = [
        (
            f"{slug}-{age}",
            now - timedelta(days=age),
            slug,
            "op",
            "s",
            "rest",
            "ok",
            "",
            1.0,
            1,
            1,
            "",
            0,
            0,
            "",
            "t",
        )
        for slug in ("freeshop", "proshop")
        for age in (1, 10, 40, 100)
    ]
    client = clickhouse_client()
    try:
        client.execute(f"INSERT INTO operation_calls ({', '.join(COLUMNS)}) VALUES", rows)
        telemetry_retention_enforce()
        wait_for(
            lambda: (
                client.execute("SELECT count() FROM system.mutations WHERE is_done = 0")[0][0] == 0
            )
        )
        left = dict(
            client.execute("SELECT tenant, count() FROM operation_calls FINAL GROUP BY tenant")
        )
    finally:
        client.disconnect()
    assert left == {
        "freeshop": 1,
        "proshop": 2,
    }  # free keeps 7 days, pro 30; 100 days is gone for all


def test_a_replayed_batch_is_not_inserted_twice(clickhouse: ClickHouseServer) -> None:
    from smarteros.events.envelope import Envelope
    from telemetry.sink import row_from_envelope

    rows = [
        row_from_envelope(
            Envelope(
                type="operation.called",
                source="t",
                tenant="replay",
                data={
                    "operation": "op",
                    "service": "s",
                    "surface": "rest",
                    "status": "ok",
                    "latency_ms": 1.0,
                },
            ).to_bytes()
        )
        for _ in range(50)
    ]
    sink = TelemetrySink(**{"group.id": "unused"})
    try:
        sink.insert(rows[:30])
        sink.insert(rows)  # the first 30 again, as after a crash before the offset commit
    finally:
        sink.consumer.close()
    client = clickhouse_client()
    try:
        assert client.execute(
            "SELECT count(), uniqExact(event_id) FROM operation_calls WHERE tenant = 'replay'"
        ) == [(50, 50)]
    finally:
        client.disconnect()
