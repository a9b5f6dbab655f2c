"""Browse a topic with a short-lived consumer: assigned partitions, no group, no commits.

Each request scans forward from a start position until it has `limit` matches, reaches the end
of every partition (where each ended when the scan began: read to the broker's partition EOF, not
taken from a listed high watermark, which the local broker may give short), or spends its time or
bytes budget.
The cursor it returns (`next`) resumes the scan: "load more" goes on forward, or, after `newest`,
back in time (`before:` cursors: the `limit` messages before each partition's position).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from django.conf import settings

from smarteros.infra.evaluator import request_budget
from smarteros.parsing import (
    InvalidValue,
    parse_iso_time,
    parse_offset,
    parse_partition,
    parse_unix_millis,
)
from telemetry.topics.filters import MessageFilter
from telemetry.topics.masking import Masker
from telemetry.topics.records import END_SECONDS, message_record, partition_ends, viewer_consumer

MAX_PARTITIONS_PER_REQUEST = 1024
FILTER_SLICE = 50  # records judged between two checks of cancel and the time budget

_running_lock = threading.Lock()
_running = 0  # scans of this process whose Kafka consumer is open
_slots: dict[int, threading.BoundedSemaphore] = {}


def _take_slot(seconds: float, cancelled: threading.Event | None) -> threading.BoundedSemaphore:
    """One of the process's TOPICS_SCANS_PER_PROCESS scan slots. Scans decode and mask in
    Python threads: more of them at once would take the GIL from the event loop in turns."""
    limit = settings.TOPICS_SCANS_PER_PROCESS
    with _running_lock:
        slots = _slots.setdefault(limit, threading.BoundedSemaphore(limit))
    deadline = time.monotonic() + seconds
    while not slots.acquire(timeout=0.1):
        if (cancelled is not None and cancelled.is_set()) or time.monotonic() > deadline:
            raise BrowseBusy(f"this server runs {limit} browses at once already; try again")
    return slots


def scans_running() -> int:
    """Browse scans of this process holding a Kafka consumer now."""
    return _running


def _count_scan(delta: int) -> None:
    global _running
    with _running_lock:
        _running += delta


class BrowseError(ValueError):
    """Bad browse input; `field` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class TopicUnavailable(Exception):
    """The broker did not answer, or the topic is not on it."""


class BrowseBusy(TopicUnavailable):
    """Every scan slot of this process stayed taken for the request's time budget."""


@dataclass(frozen=True)
class Start:
    kind: str  # newest, oldest, offset, timestamp, cursor (forward), before (backward)
    value: int = 0
    cursor: dict[int, int] = field(default_factory=dict)

    def encode(self) -> str:
        if self.kind in ("newest", "oldest"):
            return self.kind
        if self.kind in ("cursor", "before"):
            pairs = ",".join(f"{p}-{o}" for p, o in sorted(self.cursor.items()))
            return f"{self.kind}:{pairs}"
        return f"{self.kind}:{self.value}"


def parse_start(raw: Any) -> Start:
    """`newest`, `oldest`, `offset:N`, `timestamp:MS` or `timestamp:ISO-8601`, `cursor:P-O,…`
    (forward from those offsets) or `before:P-O,…` (backward from them)."""
    if raw in (None, ""):
        return Start("newest")
    if not isinstance(raw, str) or len(raw) > 20_000:
        raise BrowseError("start", "start must be text")
    if raw in ("newest", "oldest"):
        return Start(raw)
    kind, _, value = raw.partition(":")
    try:
        if kind == "offset":
            return Start("offset", parse_offset(value))
        if kind == "timestamp":
            if "-" not in value:  # every ISO 8601 date has one; milliseconds never
                return Start("timestamp", parse_unix_millis(value, field="timestamp"))
            moment = parse_iso_time(value, field="timestamp")
            return Start("timestamp", int(moment.timestamp() * 1000))
        if kind in ("cursor", "before"):
            cursor: dict[int, int] = {}
            for part in value.split(","):
                p, _, o = part.partition("-")
                if len(cursor) >= MAX_PARTITIONS_PER_REQUEST:
                    raise BrowseError("start", "cursor names too many partitions")
                cursor[parse_partition(p)] = parse_offset(o)
            return Start(kind, cursor=cursor)
    except InvalidValue as exc:
        raise BrowseError("start", f"start: {exc}") from None
    raise BrowseError("start", "start must be newest, oldest, offset:N, timestamp:T or cursor:…")


@dataclass
class BrowseResult:
    messages: list[dict[str, Any]]
    scanned: int
    matched: int
    next: Start
    done: bool  # every partition read to where it ended when the scan began
    stopped: str  # "limit", "end", "time budget", "bytes budget"
    partitions: list[int]


def _consumer() -> Consumer:
    return viewer_consumer(**{"auto.offset.reset": "earliest", "fetch.max.bytes": 5_000_000})


def topic_partitions(consumer: Any, topic: str, timeout: float = 5.0) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise TopicUnavailable(str(exc)) from None
    entry = metadata.topics.get(topic)
    if entry is None or entry.error is not None or not entry.partitions:
        raise TopicUnavailable(f"topic {topic!r} is not on the broker")
    return sorted(entry.partitions)


def _offset_at_time(consumer: Any, topic: str, partition: int, ms: int, low: int, high: int) -> int:
    """First offset whose timestamp is >= ms. The broker's answer is checked by reading (some
    brokers answer the log start whatever the time); otherwise a binary search on what is read."""
    try:
        [answer] = consumer.offsets_for_times([TopicPartition(topic, partition, ms)], timeout=5)
        hint = answer.offset if answer.offset >= 0 else high
    except KafkaException:
        hint = -1
    if low <= hint <= high:
        before_ok = hint == low or _timestamp_at(consumer, topic, partition, hint - 1) < ms
        at_ok = hint == high or _timestamp_at(consumer, topic, partition, hint) >= ms
        if before_ok and at_ok:
            return hint
    lo, hi = low, high
    while lo < hi:
        mid = (lo + hi) // 2
        if _timestamp_at(consumer, topic, partition, mid) < ms:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _timestamp_at(consumer: Any, topic: str, partition: int, offset: int) -> int:
    consumer.assign([TopicPartition(topic, partition, offset)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        consumer.unassign()
        return int(message.timestamp()[1])
    consumer.unassign()
    return 2**62  # unreadable: treat as later, so the search moves left


def browse(
    *,
    topic: str,
    masker: Masker,
    message_filter: MessageFilter,
    partition: int | None = None,
    start: Start | None = None,
    limit: int = 100,
    seconds: float | None = None,
    max_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_results: int | None = None,
    cancelled: threading.Event | None = None,
) -> BrowseResult:
    """Scan `topic` (checked by the caller against the operator's grants) for up to `limit`
    matching, masked records, within the time and bytes budgets; `progress(scanned, matched)`
    is called about every 250 ms; setting `cancelled` ends the scan early (the socket moved on)."""
    start = start or Start("newest")
    limit = max(1, min(limit, max_results or settings.TOPICS_BROWSE_MAX_RESULTS))
    seconds = seconds if seconds is not None else settings.TOPICS_BROWSE_SECONDS
    max_bytes = max_bytes if max_bytes is not None else settings.TOPICS_BROWSE_MAX_BYTES
    slot = _take_slot(seconds, cancelled)
    try:
        consumer = _consumer()
    except BaseException:
        slot.release()
        raise
    _count_scan(1)
    began = time.monotonic()
    try:
        partitions = topic_partitions(consumer, topic)
        if partition is not None:
            if partition not in partitions:
                raise BrowseError("partition", f"partition must be one of {partitions}")
            partitions = [partition]
        if start.kind in ("cursor", "before") and not set(start.cursor) <= set(partitions):
            raise BrowseError("start", "cursor names a partition outside the view")
        lows: dict[int, int] = {}
        highs: dict[int, int] = {}
        for p in partitions:
            lows[p], highs[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
        ends = partition_ends(consumer, topic, highs, seconds=min(END_SECONDS, seconds))
        positions: dict[int, int] = {}
        for p in partitions:
            if start.kind == "before":
                ends[p] = min(max(start.cursor.get(p, ends[p]), lows[p]), ends[p])
            positions[p] = _start_offset(consumer, topic, p, start, lows[p], ends[p], limit)
        return _scan(
            consumer,
            topic,
            masker,
            message_filter,
            positions,
            ends,
            limit,
            max(0.0, seconds - (time.monotonic() - began)),
            max_bytes,
            progress,
            backward=lows if start.kind in ("newest", "before") else None,
            cancelled=cancelled,
        )
    except KafkaException as exc:
        raise TopicUnavailable(str(exc)) from None
    finally:
        consumer.close()
        _count_scan(-1)
        slot.release()


def _start_offset(
    consumer: Any, topic: str, p: int, start: Start, low: int, high: int, limit: int
) -> int:
    if start.kind == "oldest":
        return low
    if start.kind in ("newest", "before"):
        return max(low, high - limit)
    if start.kind == "offset":
        return min(max(start.value, low), high)
    if start.kind == "timestamp":
        return _offset_at_time(consumer, topic, p, start.value, low, high)
    return min(max(start.cursor.get(p, high), low), high)


def _scan(
    consumer: Any,
    topic: str,
    masker: Masker,
    message_filter: MessageFilter,
    positions: dict[int, int],
    ends: dict[int, int],
    limit: int,
    seconds: float,
    max_bytes: int,
    progress: Callable[[int, int], None] | None,
    *,
    backward: dict[int, int] | None = None,
    cancelled: threading.Event | None = None,
) -> BrowseResult:
    """Up to `limit` matches per partition are collected, then merged in time order: the first
    `limit` (the last `limit` when reading `backward`, given each partition's low watermark) are
    returned, and the cursor of each partition points at its first match left out (backward: at
    its oldest match shown), so "load more" misses nothing."""
    window = dict(positions)
    pending = {p for p in positions if positions[p] < ends[p]}
    if pending:
        consumer.assign([TopicPartition(topic, p, positions[p]) for p in sorted(pending)])
    per_partition: dict[int, list[dict[str, Any]]] = {p: [] for p in positions}
    budget = request_budget()
    filtering = message_filter.active
    scanned = matched = bytes_read = 0
    began = last_progress = time.monotonic()
    stopped = "end"
    while pending:
        if bytes_read >= max_bytes:
            stopped = "bytes budget"
            break
        now = time.monotonic()
        if now - began > seconds:
            stopped = "time budget"
            break
        if cancelled is not None and cancelled.is_set():
            stopped = "cancelled"
            break
        if progress and now - last_progress > 0.25:
            progress(scanned, matched)
            last_progress = now
        batch = []
        for message in consumer.consume(500, 0.2):
            if message.error():
                continue
            if message.partition() in pending and message.offset() < ends[message.partition()]:
                batch.append(message_record(message, masker))
        # Judged a slice at a time (in the evaluator's processes, under the request's budget),
        # so a cancel or the time budget ends the scan between slices; records past a
        # partition's limit are judged too, and then left out below.
        verdicts: list[bool] = []
        while len(verdicts) < len(batch):
            if cancelled is not None and cancelled.is_set():
                stopped = "cancelled"
                break
            if verdicts and time.monotonic() - began > seconds:
                stopped = "time budget"
                break
            if progress and time.monotonic() - last_progress > 0.25:
                progress(scanned, matched)
                last_progress = time.monotonic()
            piece = batch[len(verdicts) : len(verdicts) + FILTER_SLICE]
            verdicts += (
                message_filter.select(piece, budget=budget) if filtering else [True] * len(piece)
            )
        for record, wanted in zip(batch, verdicts, strict=False):
            p, offset = record["partition"], record["offset"]
            if p not in pending:
                continue
            positions[p] = offset + 1
            scanned += 1
            bytes_read += record["size"]
            if wanted:
                matched += 1
                per_partition[p].append(record)
            if positions[p] >= ends[p] or len(per_partition[p]) >= limit:
                pending.discard(p)
                if len(per_partition[p]) >= limit and positions[p] < ends[p]:
                    stopped = "limit"
            if bytes_read >= max_bytes:
                break  # the rest of this batch is not counted: the cursor resumes before it
    merged = sorted(
        (r for records in per_partition.values() for r in records),
        key=lambda r: (r["timestamp"], r["partition"], r["offset"]),
    )
    if backward is not None:
        shown = merged[-limit:]
        before = {}
        for p in positions:
            offsets = [r["offset"] for r in shown if r["partition"] == p]
            if offsets:
                before[p] = min(offsets)
            elif per_partition[p] or positions[p] < ends[p]:
                before[p] = ends[p]  # matches not shown yet, or a window not read to its end
            else:
                before[p] = window[p]  # nothing here: go further back next time
        if progress:
            progress(scanned, matched)
        return BrowseResult(
            messages=shown,
            scanned=scanned,
            matched=len(shown),
            next=Start("before", cursor=before),
            done=all(before[p] <= backward[p] for p in before),
            stopped=stopped,
            partitions=sorted(positions),
        )
    shown = merged[:limit]
    cursor = dict(positions)
    for record in merged[limit:]:
        p = record["partition"]
        cursor[p] = min(cursor[p], record["offset"])
    if len(merged) > limit:
        stopped = "limit"
    if progress:
        progress(scanned, matched)
    return BrowseResult(
        messages=shown,
        scanned=scanned,
        matched=len(shown),
        next=Start("cursor", cursor=cursor),
        done=all(cursor[p] >= ends[p] for p in cursor),
        stopped=stopped,
        partitions=sorted(positions),
    )


def message_at(*, topic: str, partition: int, offset: int, masker: Masker) -> dict[str, Any]:
    """One masked record, for the detail view and replay checks; BrowseError if absent."""
    from telemetry.topics.filters import compile_filter

    result = browse(
        topic=topic,
        masker=masker,
        message_filter=compile_filter(),
        partition=partition,
        start=Start("offset", offset),
        limit=1,
    )
    if not result.messages or result.messages[0]["offset"] != offset:
        raise BrowseError("offset", f"no message at partition {partition} offset {offset}")
    return result.messages[0]
