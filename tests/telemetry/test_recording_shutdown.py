"""The web server sends the telemetry it still holds before it exits on SIGTERM, as a restart
stops it: records batched in the producer are not lost with the process."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from smarteros.events.backup import _consumer, read_partitions
from smarteros.events.envelope import Envelope
from smarteros.infra.kafka import admin_client
from telemetry.recording import TELEMETRY_TOPIC
from tests.processes import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)


def calls_recorded_for(tenant: str) -> int:
    metadata = admin_client().list_topics(TELEMETRY_TOPIC, timeout=10).topics[TELEMETRY_TOPIC]
    consumer = _consumer(None)
    try:
        records = read_partitions(
            consumer, [(TELEMETRY_TOPIC, p) for p in metadata.partitions], timeout=30
        )
    finally:
        consumer.close()
    envelopes = (
        Envelope.from_bytes(base64.b64decode(record["value"]))
        for partition in records.values()
        for record in partition
    )
    return sum(1 for e in envelopes if e.tenant == tenant and e.type == "operation.called")


def test_records_still_queued_when_the_web_server_is_stopped_reach_the_broker(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    tk = make_tenant("lastcalls")
    before = calls_recorded_for(tk.tenant.slug)  # the topic outlives the test database
    # Held back for 5 s (the resend time is 10 s): only the shutdown sends them in time.
    # Two worker processes, as `make run` and compose.yml serve it.
    server = asgi_server(
        env={**server_env, "KAFKA_TELEMETRY_LINGER_MS": "5000"}, args=("--workers", "2")
    )
    try:
        for _ in range(3):
            response = httpx.post(
                f"{server.url}/api/v1/tenant/get_tenant",
                json={},
                headers={"Authorization": f"Bearer {tk.key}"},
            )
            assert response.status_code == 200, response.text
    finally:
        server.stop()  # SIGTERM, as a restart sends it
    assert calls_recorded_for(tk.tenant.slug) - before == 3
