"""The platform health page: the readiness report /readyz gives, for a person — services, processes
with restarts and last exit, consumer groups, outbox — and dead letters by tenant; platform only."""

from __future__ import annotations

import json

import pytest

from smarteros.infra.redis import get_redis
from smarteros.infra.supervision import supervisor_key
from tests.tenants.console.conftest import World, dead_letters_insert

pytestmark = pytest.mark.django_db


def test_platform_admins_see_processes_restarts_and_dead_letters_by_tenant(world: World) -> None:
    dead_letters_insert(world.acme.slug, 3)
    key = supervisor_key()
    get_redis().set(
        key,
        json.dumps(
            {
                "processes": {
                    "worker": {
                        "state": "crash-loop",
                        "restarts": 6,
                        "exits_last_minute": 5,
                        "last_exit": "killed by SIGSEGV",
                    }
                }
            }
        ),
        ex=60,
    )
    try:
        page = world.client("platform").get("/platform/health/")
        readyz = world.client("platform").get("/readyz").json()
    finally:
        get_redis().delete(key)
    body = page.content.decode()
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert 'id="health-status">degraded<' in body and readyz["status"] == "degraded"
    assert "killed by SIGSEGV" in body and "crash loop" in body
    for service in ("postgres", "redis", "kafka", "clickhouse"):
        assert f"<td>{service}</td>" in body, service
    dead = body.split('id="health-dead-letters"')[1]
    assert world.acme.slug in dead and "<td>3</td>" in dead
    assert 'href="/platform/health/"' in body  # in the nav


def test_tenant_people_may_not_see_it(world: World) -> None:
    for who in ("admin", "viewer"):
        client = world.client(who)
        assert client.get("/platform/health/").status_code == 403
        assert 'href="/platform/health/"' not in client.get("/").content.decode()
