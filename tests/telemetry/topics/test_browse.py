"""Browse with a short-lived consumer against a real broker: starts, budgets, cursor, filters."""

from __future__ import annotations

from typing import Any

import pytest

from telemetry.topics.browse import BrowseError, Start, browse, message_at, parse_start
from telemetry.topics.filters import compile_filter
from telemetry.topics.masking import Masker
from tests.telemetry.topics.conftest import produce

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "acme.shopify.webhooks"
BASE = 1_800_000_000_000


def fill(count: int = 30) -> None:
    for i in range(count):
        produce(
            TOPIC,
            {"n": i, "total": i * 10},
            key=f"k{i}",
            partition=i % 3,
            timestamp=BASE + i * 1000,
        )


def run(**kwargs: Any) -> Any:
    kwargs.setdefault("message_filter", compile_filter())
    return browse(topic=TOPIC, masker=Masker(tenant_slug="acme"), **kwargs)


def test_starts_limits_and_cursor(world: Any) -> None:
    fill()
    oldest = run(start=parse_start("oldest"), limit=1000)
    assert oldest.scanned == 30 and oldest.done and oldest.stopped == "end"
    newest = run(start=parse_start("newest"), limit=4)
    assert [m["value"]["n"] for m in newest.messages][-1] == 29
    first_page = run(partition=1, start=parse_start("oldest"), limit=4)
    assert [m["value"]["n"] for m in first_page.messages] == [1, 4, 7, 10]
    assert first_page.stopped == "limit"
    second = run(partition=1, start=first_page.next, limit=4)
    assert [m["value"]["n"] for m in second.messages] == [13, 16, 19, 22]
    at_offset = run(partition=2, start=parse_start("offset:3"), limit=1)
    assert at_offset.messages[0]["value"]["n"] == 11


def test_newest_pages_back_in_time_to_the_start(world: Any) -> None:
    fill()
    seen: list[int] = []
    start = parse_start("newest")
    for _ in range(10):
        page = run(start=start, limit=7)
        seen = [m["value"]["n"] for m in page.messages] + seen
        start = parse_start(page.next.encode())
        if page.done:
            break
    assert seen == list(range(30)) and page.done
    filtered = run(
        start=parse_start("newest"),
        limit=2,
        message_filter=compile_filter(cel_source="value.n % 10 == 0"),
    )
    # Newest looks at each partition's last 2 (24 to 29): no match there; older pages go on.
    assert filtered.messages == [] and not filtered.done
    older = run(
        start=filtered.next, limit=2, message_filter=compile_filter(cel_source="value.n % 10 == 0")
    )
    assert [m["value"]["n"] for m in older.messages] == [20]


def test_seek_by_timestamp_lands_on_the_first_message_at_or_after_it(world: Any) -> None:
    fill()
    # Between n=16 and n=17: n=17 (partition 2) is the first at or after.
    result = run(partition=2, start=parse_start(f"timestamp:{BASE + 16_500}"), limit=1)
    assert result.messages[0]["value"]["n"] == 17
    iso = run(start=parse_start("timestamp:2027-01-15T08:00:20Z"), limit=3)
    assert [m["value"]["n"] for m in iso.messages] == [20, 21, 22]


def test_filters_run_on_the_server(world: Any) -> None:
    fill()
    result = run(
        start=parse_start("oldest"),
        limit=100,
        message_filter=compile_filter(cel_source="value.total >= 250"),
    )
    assert sorted(m["value"]["n"] for m in result.messages) == [25, 26, 27, 28, 29]
    assert result.scanned == 30 and result.matched == 5


def test_time_and_bytes_budgets_stop_the_scan(world: Any) -> None:
    for i in range(200):
        produce(TOPIC, {"n": i, "pad": "x" * 2000}, partition=0)
    result = run(
        start=parse_start("oldest"),
        limit=1000,
        max_bytes=20_000,
        message_filter=compile_filter(q="no such text"),
    )
    assert result.stopped == "bytes budget" and 0 < result.scanned < 200
    resumed = run(start=result.next, limit=1000, message_filter=compile_filter(q="no such text"))
    assert resumed.scanned == 200 - result.scanned


def test_progress_is_reported(world: Any) -> None:
    fill()
    seen: list[tuple[int, int]] = []
    run(start=parse_start("oldest"), limit=1000, progress=lambda s, m: seen.append((s, m)))
    assert seen[-1] == (30, 30)


def test_bad_positions_are_refused_with_the_field(world: Any) -> None:
    fill(3)
    with pytest.raises(BrowseError) as caught:
        run(partition=7)
    assert caught.value.field == "partition"
    with pytest.raises(BrowseError):
        run(start=Start("cursor", cursor={9: 0}))
    for bad in ("offset:-1", "timestamp:yesterday", "cursor:1-x", "latest"):
        with pytest.raises(BrowseError):
            parse_start(bad)
    with pytest.raises(BrowseError):
        message_at(topic=TOPIC, partition=0, offset=99, masker=Masker(tenant_slug="acme"))
