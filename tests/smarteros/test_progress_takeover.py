"""A member that stopped reporting stalls its group until the group takes its partitions: a
killed worker (restarted under a new pid) must not keep /readyz degraded for minutes, a stuck
one must turn it degraded."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from smarteros.events import progress
from smarteros.infra.redis import get_redis


@pytest.fixture
def reports(settings: Any) -> Any:
    settings.KAFKA_CONSUMER_GROUP_PREFIX = f"takeover-{uuid.uuid4().hex[:8]}"
    settings.CONSUMER_GROUP_STALL_SECONDS = 120
    key = progress._key()

    def write(member: str, **report: Any) -> None:
        now = time.time()
        entry = {"group": "flow", "lag": 0, "progress_at": now, "reported_at": now, **report}
        get_redis().hset(key, f"flow@{member}", json.dumps(entry))

    yield write
    get_redis().delete(key)


def status() -> progress.GroupStatus:
    (flow,) = progress.consumer_groups_status()
    return flow


def test_a_killed_member_whose_partitions_were_taken_is_gone(reports: Any) -> None:
    now = time.time()
    reports("host:1", reported_at=now - 200, progress_at=now - 200, partitions=6, lag=4)
    reports("host:2", partitions=12, assigned_at=now - 190)  # took them after the kill
    flow = status()
    assert flow.stalled == "" and flow.members == 1 and flow.lag == 0
    assert len(get_redis().hgetall(progress._key())) == 1  # the dead member's report is dropped


def test_a_silent_member_nobody_took_over_from_stalls_its_group(reports: Any) -> None:
    now = time.time()
    reports("host:1", reported_at=now - 200, progress_at=now - 200, partitions=6, lag=4)
    reports("host:2", partitions=6, assigned_at=now - 900)  # unchanged since before the silence
    flow = status()
    assert flow.stalled.startswith("a member has not reported for") and flow.lag == 4


def test_a_silent_member_that_held_no_partition_stalls_nothing(reports: Any) -> None:
    now = time.time()
    reports("host:1", reported_at=now - 200, partitions=0)
    reports("host:2", partitions=6, assigned_at=now - 900)
    assert status().stalled == ""


def test_a_group_whose_every_member_went_silent_is_stalled(reports: Any) -> None:
    now = time.time()
    reports("host:1", reported_at=now - 200, partitions=6, assigned_at=now - 900)
    reports("host:2", reported_at=now - 180, partitions=6, assigned_at=now - 190)
    assert status().stalled.startswith("a member has not reported for")
