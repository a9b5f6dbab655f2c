"""The overview says how current its topic counts are, from the topic counter's own reports:
as of its last report when caught up, how far behind otherwise, and plainly when it is not
reporting at all (a count of 0 then may be wrong)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from smarteros.events.progress import _key
from smarteros.infra.redis import get_redis
from telemetry.counter import GROUP
from tests.tenants.console.conftest import World

pytestmark = pytest.mark.django_db(transaction=True)


def report(lag: int, *, progress_ago: float, reported_ago: float) -> None:
    now = time.time()
    entry = {
        "group": GROUP,
        "lag": lag,
        "progress_at": now - progress_ago,
        "reported_at": now - reported_ago,
    }
    get_redis().hset(_key(), f"{GROUP}@test:1", json.dumps(entry))


def counted(world: World) -> str:
    page = world.client("viewer").get(f"/tenants/{world.acme.slug}/").content.decode()
    return page.split('id="counted">')[1].split("</p>")[0]


def test_the_overview_says_how_current_its_counts_are(world: World, settings: Any) -> None:
    settings.KAFKA_CONSUMER_GROUP_PREFIX = f"fresh{secrets.token_hex(3)}"  # a hash of its own
    try:
        assert "topic counter is not reporting" in counted(world)
        report(0, progress_ago=3, reported_ago=3)
        assert counted(world) == "As of 3 s ago."
        report(40, progress_ago=20, reported_ago=2)
        assert counted(world) == "Counting: 40 messages behind, last progress 20 s ago."
        report(40, progress_ago=900, reported_ago=2)
        assert "the topic counter is stalled" in counted(world)
    finally:
        get_redis().delete(_key())
