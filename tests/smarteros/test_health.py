"""/healthz and /readyz against the real services, and against ones really stopped."""

from __future__ import annotations

import pytest
from django.test import Client

from smarteros.events.catalog import platform_topics
from smarteros.infra.kafka import admin_client
from tests.processes import kafka_broker, vault_server


def readyz(client: Client) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_healthz_is_alive() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_all_five_up() -> None:
    status, body = readyz(Client())
    assert status == 200, body
    assert body["down"] == []
    assert set(body["dependencies"]) == {"postgres", "redis", "kafka", "vault", "clickhouse"}
    for dependency in body["dependencies"].values():
        assert dependency["status"] == "up"
        assert dependency["latency_ms"] >= 0


@pytest.mark.django_db
def test_readyz_names_a_kafka_broker_that_was_stopped(settings) -> None:  # type: ignore[no-untyped-def]
    with kafka_broker() as broker:
        settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{broker.port}"
        status, body = readyz(Client())
        assert status == 200, body
        # One platform topic is asked for (not every topic), and asking created nothing.
        assert body["dependencies"]["kafka"]["detail"] == "1 broker(s)"
        probed = platform_topics()[0].name
        assert probed not in admin_client().list_topics(timeout=10).topics
        broker.stop()
        status, body = readyz(Client())
    assert status == 503
    assert body["down"] == ["kafka"]
    assert body["dependencies"]["kafka"]["status"] == "down"
    assert body["dependencies"]["postgres"]["status"] == "up"


@pytest.mark.django_db
def test_readyz_names_a_vault_that_was_stopped(settings) -> None:  # type: ignore[no-untyped-def]
    with vault_server(token="readyz-token") as vault:
        settings.VAULT_ADDR = f"http://127.0.0.1:{vault.port}"
        settings.VAULT_TOKEN = "readyz-token"
        assert readyz(Client())[0] == 200
        vault.stop()
        status, body = readyz(Client())
    assert status == 503
    assert body["down"] == ["vault"]


@pytest.mark.django_db
def test_readyz_reports_every_down_dependency_quickly(settings) -> None:  # type: ignore[no-untyped-def]
    import time

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CLICKHOUSE_URL = "clickhouse://default@127.0.0.1:1/smarteros"
    started = time.monotonic()
    status, body = readyz(Client())
    assert status == 503
    assert sorted(body["down"]) == ["clickhouse", "redis"]
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_readyz_lists_worker_heartbeats_and_flags_a_stale_one(settings) -> None:  # type: ignore[no-untyped-def]
    import json
    import time

    from smarteros.infra.heartbeat import HEARTBEATS_KEY, Heartbeat
    from smarteros.infra.redis import get_redis

    get_redis().delete(HEARTBEATS_KEY)
    heartbeat = Heartbeat("relay", interval=0.2).start()
    try:
        deadline = time.monotonic() + 5
        while heartbeat.name not in readyz(Client())[1]["workers"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        status, body = readyz(Client())
        assert status == 200 and body["status"] == "ready", body
        assert body["workers"][heartbeat.name]["status"] == "beating"

        record = {"role": "consumers", "pid": 1, "at": time.time() - 45}
        get_redis().hset(HEARTBEATS_KEY, "consumers-gone", json.dumps(record))
        status, body = readyz(Client())
        assert status == 200
        assert body["status"] == "degraded"
        assert body["degraded"] == ["consumers-gone: no heartbeat for 45s"]
        assert body["workers"]["consumers-gone"]["status"] == "stale"
    finally:
        heartbeat.stop()
        get_redis().delete(HEARTBEATS_KEY)
    assert heartbeat.name not in readyz(Client())[1]["workers"]  # a clean stop is not stale
