"""The web server sends the telemetry it still holds before it exits on SIGTERM, as a restart
stops it: records batched in the producer are not lost with the process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smarteros.events.envelope import Envelope
from telemetry.recording import TELEMETRY_TOPIC
from tests.processes import asgi_server
from tests.smarteros.backbone import read_all

pytestmark = pytest.mark.django_db(transaction=True)


def calls_recorded_for(tenant: str) -> int:
    envelopes = (Envelope.from_bytes(message.value()) for message in read_all(TELEMETRY_TOPIC))
    return sum(1 for e in envelopes if e.tenant == tenant and e.type == "operation.called")


def test_records_still_queued_when_the_web_server_is_stopped_reach_the_broker(
    server_env: dict[str, str], make_tenant: Any
) -> None:
    tk = make_tenant("lastcalls")
    before = calls_recorded_for(tk.tenant.slug)  # the topic outlives the test database
    # Held back for 5 s (the resend time is 10 s): still in the producer when it is stopped.
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
