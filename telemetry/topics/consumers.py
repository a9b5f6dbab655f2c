"""The viewer's websocket: browse with progress, and live tail with a bounded buffer.

Client → server (JSON): {"action": "browse", "topic", "partition", "start", "limit", "q", "cel"},
{"action": "live", "topic", "partition", "q", "cel"}, {"action": "pause"}, {"action": "resume"},
{"action": "stop"}.
Server → client: {"type": "progress", "scanned", "matched"}, {"type": "results", ...},
{"type": "live", "topic"} (subscribed), {"type": "batch", "messages", "missed", "cel_errors",
"cel_last_error"}, {"type": "error", "field", "message"}.
Every topic and partition is checked against the user's grants; nothing is sent unmasked.
Every frame gets an answer: one that is not JSON, binary, oversized, not an object, with an
unknown action or a bad field is answered with an error frame and the socket stays open.
Per operator, sockets and browses are limited (limits.WORK); a new browse on a socket ends the
previous one (its consumer closed) before it starts. CEL filters run in the evaluator's worker
processes, never on this event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from smarteros.parsing import InvalidValue, parse_limit, parse_partition_or_all
from telemetry.topics import limits
from telemetry.topics.access import TopicDenied, TopicGrant, topic_grant
from telemetry.topics.browse import BrowseError, TopicUnavailable, browse, parse_start
from telemetry.topics.filters import FilterError, FilterStopped, MessageFilter, compile_filter
from telemetry.topics.limits import (
    ViewerLimitReached,
    viewer_acquire,
    viewer_release,
    work_acquire,
    work_release,
)
from telemetry.topics.live import LAYER, TopicTail, tail_join, tail_leave
from telemetry.topics.masking import Masker

logger = logging.getLogger(__name__)
# Scans wait here for one of the process's scan slots (browse.py), not in the default executor,
# whose few threads the rest of the socket's work (limits, grants) needs.
_SCANS = ThreadPoolExecutor(32, thread_name_prefix="topic-browse")
ACTIONS = ("browse", "live", "pause", "resume", "stop")


class BadRequest(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def _partition(raw: Any) -> int | None:
    return parse_partition_or_all(raw)


def _limit(raw: Any) -> int:
    return parse_limit(raw, maximum=settings.TOPICS_BROWSE_MAX_RESULTS, default=100)


class TopicViewerConsumer(AsyncJsonWebsocketConsumer):
    channel_layer_alias = LAYER

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not getattr(self.user, "is_authenticated", False):
            await self.close(code=4401)
            return
        self.grant: TopicGrant | None = None
        self.tail: TopicTail | None = None
        self.filter: MessageFilter | None = None
        self.live_partition: int | None = None
        self.buffer: collections.deque[str] = collections.deque()
        self.expected = 0
        self.missed = 0
        self.sent_missed = 0
        self.paused = False
        self.flusher: asyncio.Task[None] | None = None
        self.browsing: asyncio.Task[None] | None = None
        self.browse_cancel = threading.Event()
        self.pending: collections.deque[str] = collections.deque()
        self.filtering: asyncio.Task[None] | None = None
        self.lease = self.channel_name
        self.keepalive: asyncio.Task[None] | None = None
        await self.accept()
        try:
            await sync_to_async(work_acquire, thread_sensitive=False)(
                "sockets", user_id=self.user.pk, lease=self.lease
            )
        except ViewerLimitReached as exc:
            await self._error("limit", str(exc))
            await self.close(code=4429)
            return
        self.keepalive = asyncio.create_task(self._keep_socket_lease())

    async def _keep_socket_lease(self) -> None:
        while True:
            await asyncio.sleep(limits.RENEW_SECONDS)
            with contextlib.suppress(ViewerLimitReached):  # renewing a held lease never fails
                await sync_to_async(work_acquire, thread_sensitive=False)(
                    "sockets", user_id=self.user.pk, lease=self.lease
                )

    async def disconnect(self, code: int) -> None:
        if not getattr(self.user, "is_authenticated", False):
            return
        await self._stop_live()
        self.browse_cancel.set()
        if self.keepalive is not None:
            self.keepalive.cancel()
            await sync_to_async(work_release, thread_sensitive=False)(
                "sockets", user_id=self.user.pk, lease=self.lease
            )

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Decode a frame; every kind of malformed frame is answered, never a dropped socket."""
        if text_data is None:
            await self._error("frame", "send text frames holding JSON, not binary ones")
            return
        limit = settings.TOPICS_MAX_FRAME_BYTES
        if len(text_data) > limit or len(text_data.encode("utf-8", "replace")) > limit:
            await self._error("frame", f"a frame may be at most {limit} bytes")
            return
        try:
            content = orjson.loads(text_data)
        except orjson.JSONDecodeError:
            await self._error("frame", "the frame is not JSON")
            return
        try:
            await self.receive_json(content)
        except Exception:  # an input no check foresaw: answer it, keep the socket
            logger.exception("topic viewer frame failed")
            await self._error("frame", "this request could not be handled")

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self._error("action", "send a JSON object with an action")
            return
        action = content.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            await self._error("action", "action must be browse, live, pause, resume or stop")
            return
        try:
            if action == "browse":
                await self._browse(content)
            elif action == "live":
                await self._live(content)
            elif action == "pause":
                self.paused = True
                await self.send_json({"type": "paused"})
            elif action == "resume":
                self.paused = False
                await self.send_json({"type": "resumed"})
            elif action == "stop":
                await self._stop_live()
                await self.send_json({"type": "stopped"})
            else:
                await self._error("action", "action must be browse, live, pause, resume or stop")
        except (BadRequest, BrowseError, FilterError, InvalidValue) as exc:
            await self._error(exc.field, str(exc))
        except TopicDenied as exc:
            await self._error("topic", str(exc))
        except ViewerLimitReached as exc:
            await self._error("limit", str(exc))

    async def _error(self, field_name: str, message: str) -> None:
        await self.send_json({"type": "error", "field": field_name, "message": message})

    async def _grant(self, topic: Any) -> TopicGrant:
        # Not in the one thread that serves every sync view (/healthz included): a slow
        # database answer to a viewer must not queue the site's pages behind it.
        return await database_sync_to_async(topic_grant, thread_sensitive=False)(self.user, topic)

    # Browse ---------------------------------------------------------------------------------

    async def _browse(self, content: dict[str, Any]) -> None:
        partition = _partition(content.get("partition"))
        start = parse_start(content.get("start"))
        limit = _limit(content.get("limit"))
        message_filter = compile_filter(
            q=content.get("q") or "", cel_source=content.get("cel") or ""
        )
        # One scan per socket: a new request ends the previous one (its thread and its Kafka
        # consumer) before it starts, so it never counts against the operator's own limit.
        await self._cancel_browse()
        # The limit before the grant: a refused browse costs one Redis call, no database query.
        lease = f"{self.lease}:browse"
        await sync_to_async(work_acquire, thread_sensitive=False)(
            "browses", user_id=self.user.pk, lease=lease
        )
        try:
            grant = await self._grant(content.get("topic"))
        except BaseException:
            await sync_to_async(work_release, thread_sensitive=False)(
                "browses", user_id=self.user.pk, lease=lease
            )
            raise
        self.browse_cancel = threading.Event()
        self.browsing = asyncio.create_task(
            self._run_browse(grant, partition, start, limit, message_filter, self.browse_cancel)
        )

    async def _cancel_browse(self) -> None:
        self.browse_cancel.set()
        browsing, self.browsing = self.browsing, None
        if browsing is not None:
            await asyncio.gather(browsing, return_exceptions=True)

    async def _run_browse(
        self,
        grant: TopicGrant,
        partition: Any,
        start: Any,
        limit: int,
        message_filter: MessageFilter,
        cancelled: threading.Event,
    ) -> None:
        loop = asyncio.get_running_loop()

        def progress(scanned: int, matched: int) -> None:
            asyncio.run_coroutine_threadsafe(
                self.send_json({"type": "progress", "scanned": scanned, "matched": matched}), loop
            )

        try:
            scan = functools.partial(
                browse,
                topic=grant.topic,
                masker=Masker.for_grant(grant),
                message_filter=message_filter,
                partition=partition,
                start=start,
                limit=limit,
                progress=progress,
                cancelled=cancelled,
            )
            result = await loop.run_in_executor(_SCANS, scan)
        except (BrowseError, FilterError) as exc:
            await self._error(exc.field, str(exc))
            return
        except TopicUnavailable as exc:
            if not cancelled.is_set():  # a scan replaced while it waited for a slot says nothing
                await self._error("topic", f"topic unavailable: {exc}")
            return
        except Exception:  # never a silent end: the browser waits for an answer
            logger.exception("topic browse failed", extra={"topic": grant.topic})
            await self._error("topic", "the browse failed; try again")
            return
        finally:
            await sync_to_async(work_release, thread_sensitive=False)(
                "browses", user_id=self.user.pk, lease=f"{self.lease}:browse"
            )
        if cancelled.is_set():
            return
        await self.send_json(
            {
                "type": "results",
                "topic": grant.topic,
                "messages": result.messages,
                "scanned": result.scanned,
                "matched": result.matched,
                "next": result.next.encode(),
                "done": result.done,
                "stopped": result.stopped,
                **message_filter.describe(),
            }
        )

    # Live -----------------------------------------------------------------------------------

    async def _live(self, content: dict[str, Any]) -> None:
        grant = await self._grant(content.get("topic"))
        partition = _partition(content.get("partition"))
        message_filter = compile_filter(
            q=content.get("q") or "", cel_source=content.get("cel") or ""
        )
        await self._stop_live()
        await sync_to_async(viewer_acquire, thread_sensitive=False)(
            user_id=self.user.pk, tenant_id=grant.tenant_id, lease=self.lease
        )
        self.grant, self.filter, self.live_partition = grant, message_filter, partition
        self.buffer, self.pending = collections.deque(), collections.deque()
        self.missed, self.sent_missed, self.paused = 0, 0, False
        tail = await tail_join(grant.topic, Masker.for_grant(grant))
        self.tail = tail
        await self.channel_layer.group_add(tail.group, self.channel_name)
        self.expected = tail.sent
        self.flusher = asyncio.create_task(self._flush_loop())
        await self.send_json({"type": "live", "topic": grant.topic, "partition": partition})

    async def _stop_live(self) -> None:
        flusher, self.flusher = self.flusher, None
        if flusher is not None:
            flusher.cancel()
        filtering, self.filtering = self.filtering, None
        if filtering is not None and filtering is not asyncio.current_task():
            filtering.cancel()
        self.pending.clear()
        await self._leave_tail()

    async def _leave_tail(self) -> None:
        tail, self.tail = self.tail, None
        if tail is None:
            return
        await self.channel_layer.group_discard(tail.group, self.channel_name)
        await tail_leave(tail.topic)
        grant = self.grant
        if grant is not None:
            await sync_to_async(viewer_release, thread_sensitive=False)(
                user_id=self.user.pk, tenant_id=grant.tenant_id, lease=self.lease
            )

    async def _still_allowed(self) -> bool:
        """Renew the viewer lease, and check the grant again: a membership removed while the
        socket is open ends its live view within limits.RENEW_SECONDS."""
        assert self.grant is not None
        try:
            await self._grant(self.grant.topic)
        except TopicDenied:
            await self._leave_tail()
            await self._error("topic", "you may no longer see this topic")
            return False
        # Renewing a lease we hold never fails; one that expired meanwhile may.
        with contextlib.suppress(ViewerLimitReached):
            await sync_to_async(viewer_acquire, thread_sensitive=False)(
                user_id=self.user.pk, tenant_id=self.grant.tenant_id, lease=self.lease
            )
        return True

    async def tail_batch(self, event: dict[str, Any]) -> None:
        """A batch from this process's tail: buffer (bounded) what passes the filter, count what
        is dropped. Filtering happens off the loop (_filter_pending)."""
        if self.tail is None or self.filter is None:
            return
        first, records = int(event["first"]), event["records"]
        if first > self.expected:
            self.missed += first - self.expected  # batches the layer skipped for this socket
        self.expected = max(self.expected, first + len(records))
        capacity = settings.TOPICS_SOCKET_BUFFER
        wanted_partition, message_filter = self.live_partition, self.filter
        filtering = message_filter.active
        for partition, text in records:
            if wanted_partition is not None and partition != wanted_partition:
                continue
            queue = self.pending if filtering else self.buffer
            if len(queue) >= capacity:
                queue.popleft()
                self.missed += 1
            queue.append(text)
        if self.pending and (self.filtering is None or self.filtering.done()):
            self.filtering = asyncio.create_task(self._filter_pending(message_filter))

    async def _filter_pending(self, message_filter: MessageFilter) -> None:
        """Judge what waits in `pending` in the evaluator (a batch at a time, each with its own
        budget); an expression stopped by its budget ends the live view with an error frame."""
        while self.pending and self.filter is message_filter:
            texts = list(self.pending)
            self.pending.clear()
            try:
                verdicts = await message_filter.aselect(texts)
            except FilterStopped as exc:
                await self._stop_live()
                await self._error(exc.field, f"live view stopped: {exc}")
                return
            if self.filter is not message_filter or self.tail is None:
                return
            capacity = settings.TOPICS_SOCKET_BUFFER
            for text, wanted in zip(texts, verdicts, strict=True):
                if not wanted:
                    continue
                if len(self.buffer) >= capacity:
                    self.buffer.popleft()
                    self.missed += 1
                self.buffer.append(text)

    async def _flush_loop(self) -> None:
        interval = 1 / settings.TOPICS_FRAMES_PER_SECOND
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - renewed > limits.RENEW_SECONDS and self.grant is not None:
                renewed = time.monotonic()
                if not await self._still_allowed():
                    self.flusher = None
                    return
            if self.paused or (not self.buffer and self.missed == self.sent_missed):
                continue
            count = min(len(self.buffer), settings.TOPICS_FRAME_MAX_MESSAGES)
            messages = ",".join(self.buffer.popleft() for _ in range(count))
            assert self.filter is not None
            # Records arrive as JSON text (encoded once by the tail): the frame is joined, not
            # re-encoded per socket.
            head = orjson.dumps(
                {
                    "type": "batch",
                    "missed": self.missed,
                    "buffered": len(self.buffer),
                    "cel_errors": self.filter.runtime_errors,
                    "cel_last_error": self.filter.last_error,
                }
            ).decode()
            await self.send(text_data=f'{head[:-1]},"messages":[{messages}]}}')
            self.sent_missed = self.missed
