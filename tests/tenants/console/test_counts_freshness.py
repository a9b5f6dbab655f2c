"""The overview and the tenants list say how current their figures are, from the reports of
the consumer group that writes them (the topic counter for topic and dead-letter counts, the
telemetry sink for calls and errors): as of its last report when caught up, how far behind
otherwise, and plainly when it is not reporting at all (a count of 0 then may be wrong)."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import pytest

from smarteros.events.progress import _key
from smarteros.infra.redis import get_redis
from telemetry.counter import GROUP
from telemetry.sink import GROUP as SINK
from tests.tenants.console.conftest import World, calls_insert

pytestmark = pytest.mark.django_db(transaction=True)


def report(lag: int, *, progress_ago: float, reported_ago: float, group: str = GROUP) -> None:
    now = time.time()
    entry = {
        "group": group,
        "lag": lag,
        "progress_at": now - progress_ago,
        "reported_at": now - reported_ago,
    }
    get_redis().hset(_key(), f"{group}@test:1", json.dumps(entry))


def counted(world: World, which: str = "counted") -> str:
    page = world.client("viewer").get(f"/tenants/{world.acme.slug}/").content.decode()
    return page.split(f'id="{which}">')[1].split("</p>")[0]


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


def test_the_overview_says_how_current_its_calls_are(world: World, settings: Any) -> None:
    settings.KAFKA_CONSUMER_GROUP_PREFIX = f"fresh{secrets.token_hex(3)}"
    try:
        assert "telemetry sink is not reporting: these figures stop" in counted(
            world, "calls-counted"
        )
        calls_insert(world.acme.slug, ok=2, errors=0)
        # Not reporting: the newest call counted is as far as the figures are known to reach.
        assert re.fullmatch(
            r'<span class="error">The telemetry sink is not reporting:</span> as of the newest '
            r"call counted, \d+ s ago; later ones wait for it\.",
            counted(world, "calls-counted"),
        )
        report(0, progress_ago=4, reported_ago=4, group=SINK)
        assert counted(world, "calls-counted") == "As of 4 s ago."
        report(7, progress_ago=30, reported_ago=1, group=SINK)
        assert counted(world, "calls-counted") == (
            "Counting: 7 messages behind, last progress 30 s ago."
        )
        assert "topic counter is not reporting" in counted(world)  # each figure its own writer
    finally:
        get_redis().delete(_key())


def test_the_tenants_list_says_how_current_its_figures_are(world: World, settings: Any) -> None:
    settings.KAFKA_CONSUMER_GROUP_PREFIX = f"fresh{secrets.token_hex(3)}"
    try:
        report(0, progress_ago=5, reported_ago=5, group=SINK)
        report(3, progress_ago=10, reported_ago=1)
        viewer = world.client("viewer")
        for page in (
            viewer.get("/tenants/").content.decode(),
            viewer.get("/tenants/", headers={"HX-Request": "true"}).content.decode(),
        ):
            figures = page.split('id="figures-counted">')[1].split("</p>")[0]
            assert "Calls and errors: As of 5 s ago." in figures
            assert "Dead letters: Counting: 3 messages behind, last progress 10 s ago." in figures
    finally:
        get_redis().delete(_key())
