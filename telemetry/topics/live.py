"""Live tail: one shared consumer per watched topic per process, fanned out over the channel layer.

The first socket that watches a topic starts its tail; the last one to leave stops it. A tail
reads from the end of every partition with no group (nothing committed), masks each message once
and sends batches to a channel-layer group that only this process's sockets join (other
processes run their own tails, so nothing arrives twice). Each batch carries the running index of
its first message, so a socket that the layer skipped (over capacity) knows how many it missed.
A tail that falls further behind than TAIL_MAX_LAG jumps to the end and counts the gap as missed,
so a topic faster than the fan-out costs missed counts, not memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from channels.layers import get_channel_layer
from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from telemetry.topics.masking import Masker
from telemetry.topics.records import message_record, partition_ends, viewer_consumer

logger = logging.getLogger(__name__)

LAYER = "topics"
PROCESS = uuid.uuid4().hex[:12]
POLL_MESSAGES = 500
POLL_SECONDS = 0.05
TAIL_MAX_LAG = 20_000
CHUNK = 500


def group_name(topic: str) -> str:
    """The channel-layer group of this process's tail of `topic` (names limited by Channels)."""
    return f"topics.{PROCESS}.{hashlib.sha256(topic.encode()).hexdigest()[:24]}"


def _json(record: dict[str, Any]) -> str:
    try:
        return orjson.dumps(record).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits, which orjson refuses
        return json.dumps(record, default=str)


class TopicTail:
    def __init__(self, topic: str, masker: Masker) -> None:
        self.topic = topic
        self.masker = masker
        self.group = group_name(topic)
        self.viewers = 0
        self.sent = 0  # index of the next message, counting skipped ones
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"tail-{topic[:20]}")
        self._consumer: Consumer | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False)

    def _open(self) -> None:
        consumer = viewer_consumer(**{"queued.max.messages.kbytes": 8192})
        metadata = consumer.list_topics(self.topic, timeout=5)
        entry = metadata.topics.get(self.topic)
        partitions = sorted(entry.partitions) if entry and entry.error is None else []
        highs = {}
        for p in partitions:
            _, highs[p] = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5)
        # From the real end: a listed watermark short of it would show old messages as new.
        ends = partition_ends(consumer, self.topic, {p: h for p, h in highs.items() if h >= 0})
        consumer.assign([TopicPartition(self.topic, p, ends.get(p, OFFSET_END)) for p in highs])
        self._consumer = consumer

    def _poll(self) -> tuple[list[tuple[int, str]], int]:
        """(partition, masked record as JSON text) per message: encoded once here, not once per
        socket; sockets decode only when they filter."""
        consumer = self._consumer
        assert consumer is not None
        records = []
        last: dict[int, int] = {}
        for message in consumer.consume(POLL_MESSAGES, POLL_SECONDS):
            if message.error():
                continue
            record = message_record(message, self.masker)
            records.append((record["partition"], _json(record)))
            last[record["partition"]] = record["offset"]
        return records, self._skip_if_behind(consumer, last, len(records))

    def _skip_if_behind(self, consumer: Consumer, last: dict[int, int], count: int) -> int:
        if count < POLL_MESSAGES:
            return 0
        skipped = 0
        for tp in consumer.assignment():
            position = last[tp.partition] + 1 if tp.partition in last else None
            if position is None:
                continue
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high - position > TAIL_MAX_LAG:
                skipped += high - position
                consumer.seek(TopicPartition(self.topic, tp.partition, high))
        return skipped

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        layer = get_channel_layer(LAYER)
        assert layer is not None
        try:
            await loop.run_in_executor(self._executor, self._open)
        except KafkaException:
            logger.exception("topic tail could not start", extra={"topic": self.topic})
        finally:
            self.ready.set()
        if self._consumer is None:
            return
        try:
            while not self._stop.is_set():
                try:
                    records, skipped = await loop.run_in_executor(self._executor, self._poll)
                except KafkaException:
                    logger.warning("topic tail poll failed", extra={"topic": self.topic})
                    await asyncio.sleep(1)
                    continue
                for i in range(0, len(records), CHUNK):
                    chunk = records[i : i + CHUNK]
                    await layer.group_send(
                        self.group, {"type": "tail.batch", "first": self.sent, "records": chunk}
                    )
                    self.sent += len(chunk)
                self.sent += skipped
        finally:
            consumer, self._consumer = self._consumer, None
            await loop.run_in_executor(self._executor, consumer.close)


# Per event loop: a test (or a server) that runs several loops keeps their tails apart.
_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry] = (
    weakref.WeakKeyDictionary()
)


class _Registry:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.tails: dict[str, TopicTail] = {}


def _registry() -> _Registry:
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = _Registry()
    return registry


async def tail_join(topic: str, masker: Masker) -> TopicTail:
    """Count one more viewer of `topic` in this process, starting its tail if it is the first.
    The caller adds its channel to `tail.group` and reads from `tail.sent` on."""
    registry = _registry()
    async with registry.lock:
        tail = registry.tails.get(topic)
        if tail is None:
            tail = registry.tails[topic] = TopicTail(topic, masker)
            tail.start()
        tail.viewers += 1
    await tail.ready.wait()
    return tail


async def tail_leave(topic: str) -> None:
    """One viewer fewer; the last one out stops the tail."""
    registry = _registry()
    async with registry.lock:
        tail = registry.tails.get(topic)
        if tail is None:
            return
        tail.viewers -= 1
        if tail.viewers > 0:
            return
        del registry.tails[topic]
    await tail.stop()


def active_tails() -> dict[str, int]:
    """Watched topics of this event loop and their viewer counts."""
    return {topic: tail.viewers for topic, tail in _registry().tails.items()}
