"""The telemetry sink outlives a broker that goes away between its insert and its offset commit
(found by the soak: the commit raised and the sink's thread ended, so telemetry stopped until
the worker was restarted)."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import pytest
from confluent_kafka import Producer

from smarteros.events.envelope import Envelope
from smarteros.infra.clickhouse import clickhouse_client
from telemetry.sink import TelemetrySink
from tests.conftest import wait_for
from tests.processes import ClickHouseServer, ServerProcess
from tests.telemetry.test_sink import clickhouse  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def record(tenant: str) -> bytes:
    return Envelope(
        type="operation.called",
        source="test",
        tenant=tenant,
        data={"operation": "op", "service": "s", "surface": "rest", "status": "ok"},
    ).to_bytes()


def count(tenant: str) -> int:
    client = clickhouse_client()
    try:
        rows = client.execute(
            "SELECT uniqExact(event_id) FROM operation_calls WHERE tenant = %(t)s", {"t": tenant}
        )
        return int(rows[0][0])
    finally:
        client.disconnect()


def test_the_sink_keeps_running_when_its_commit_fails(
    clickhouse: ClickHouseServer,  # noqa: F811
    broker: ServerProcess,
    settings: Any,
) -> None:
    tenant = f"away{secrets.token_hex(3)}"
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    for _ in range(20):
        producer.produce("mcp.agent.telemetry", value=record(tenant))
    producer.flush(10)

    def broker_away(rows: int) -> None:
        # The broker goes away right after the batch is in ClickHouse, before its offsets
        # commit, for longer than the group's session: the assignment is lost meanwhile.
        broker.stop()
        time.sleep(settings.KAFKA_SESSION_TIMEOUT_MS / 1000 + 3)

    sink = TelemetrySink(
        batch_size=100,
        batch_seconds=0.5,
        on_insert=broker_away,
        **{"group.id": f"sink-away-{secrets.token_hex(3)}"},
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sink.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: count(tenant) == 20, timeout=60)
        thread.join(timeout=settings.KAFKA_SESSION_TIMEOUT_MS / 1000 + 10)
        assert not errors, errors
        assert thread.is_alive()  # still consuming, waiting for the broker to return
    finally:
        sink.stop()
        thread.join(timeout=60)
