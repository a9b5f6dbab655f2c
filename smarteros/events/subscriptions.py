"""Which tenants' topics the consumers read: explicit topic lists, kept current from provisioning.

A regex subscription (`^.*\\.whatsapp\\.inbound$`) makes every consumer fetch the metadata of every
topic on the broker every few seconds, so each group's cost grows with the number of tenants and
a topic deleted under it is still being fetched. Instead each consumer subscribes to the named
topics of the tenants in the directory below (the tenants table), and re-subscribes when the
directory's version (a Redis counter) moves: provisioning moves it once a tenant's topics exist,
deprovisioning moves it before deleting any. A consumer re-subscribes at most once per
SUBSCRIPTION_REFRESH_SECONDS, whatever the number of tenants provisioned meanwhile. Each consumer acknowledges the version it runs with
once its assignment holds no topic outside its list, and deprovisioning deletes a tenant's topics
only after every live consumer has acknowledged (`subscriptions_wait`).

If Redis is away, the directory is re-read from the database every FULL_REFRESH_SECONDS anyway.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # how often a consumer looks at the directory's version (one Redis GET)
FULL_REFRESH_SECONDS = 60.0
ACK_REFRESH_SECONDS = 5.0
# A consumer silent for this long is taken for gone (a paused one still refreshes its entry).
ACK_ALIVE_SECONDS = 120.0


def _key(name: str) -> str:
    # Per consumer-group prefix: stacks and tests sharing one Redis do not wait for each other.
    return f"smarteros:subscriptions:{settings.KAFKA_CONSUMER_GROUP_PREFIX}:{name}"


def subscriptions_changed() -> int:
    """Tell every consumer to re-read the directory (a tenant's topics were created); returns
    the new version."""
    return int(get_redis().incr(_key("version")))


def tenants_leave(slugs: Iterable[str]) -> int:
    """Take these tenants out of every consumer's subscription; returns the version to wait for
    (`subscriptions_wait`) before their topics may be deleted."""
    slugs = list(slugs)
    if slugs:
        get_redis().sadd(_key("leaving"), *slugs)
    return subscriptions_changed()


def tenants_left(slugs: Iterable[str]) -> None:
    """Forget the leaving mark once the tenants are deprovisioned (the table excludes them)."""
    slugs = list(slugs)
    if slugs:
        get_redis().srem(_key("leaving"), *slugs)


def subscription_acks() -> dict[str, dict[str, Any]]:
    """Each live consumer's acknowledged version and when it last said so."""
    now = time.time()
    acks = {}
    for field, raw in get_redis().hgetall(_key("acks")).items():
        ack = json.loads(raw)
        if now - ack["at"] <= ACK_ALIVE_SECONDS:
            acks[field.decode() if isinstance(field, bytes) else field] = ack
    return acks


def subscriptions_wait(version: int, *, timeout: float = 90.0) -> list[str]:
    """Wait until every live consumer runs with `version` or later; returns the consumers that
    had not by `timeout` (empty: all have left what that version removed)."""
    deadline = time.monotonic() + timeout
    while True:
        behind = sorted(k for k, ack in subscription_acks().items() if ack["version"] < version)
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(0.25)


def _consumed_slugs() -> frozenset[str]:
    """Tenants whose topics exist and are read: provisioned or being provisioned (a pending
    tenant has no topics yet), not deprovisioned, not leaving."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        slugs = set(
            Tenant.objects.exclude(status=Tenant.Status.PENDING)
            .filter(deprovisioned_at__isnull=True)
            .values_list("slug", flat=True)
        )
    leaving = {
        s.decode() if isinstance(s, bytes) else s for s in get_redis().smembers(_key("leaving"))
    }
    return frozenset(slugs - leaving)


class TenantDirectory:
    """The process's one view of the consumed tenants, shared by its consumer threads: one
    Redis GET a second at most, one table read when the version moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._slugs: frozenset[str] | None = None
        self._checked = 0.0
        self._loaded = 0.0
        self._failing = False

    def snapshot(self, *, fresh: bool = False) -> tuple[int, frozenset[str]]:
        """(version, slugs); re-read when the version moved, every minute, or when `fresh`."""
        with self._lock:
            now = time.monotonic()
            if not fresh and self._slugs is not None and now - self._checked < CHECK_SECONDS:
                return self._version or 0, self._slugs
            self._checked = now
            try:
                version = int(get_redis().get(_key("version")) or 0)
                stale = now - self._loaded >= FULL_REFRESH_SECONDS
                if fresh or stale or self._slugs is None or version != self._version:
                    self._slugs, self._loaded = _consumed_slugs(), now
                self._version = version
                self._failing = False
            except Exception as exc:  # Redis or the database away: keep the last view
                if not self._failing:
                    log.warning("tenant directory: %s: %s", type(exc).__name__, exc)
                self._failing = True
                if self._slugs is None:
                    raise
            return self._version or 0, self._slugs


_directory = TenantDirectory()


def tenant_directory() -> TenantDirectory:
    return _directory


class ExplicitSubscription:
    """Keeps one consumer subscribed to `topics_for(slugs)` as the directory changes, and
    acknowledges each version once the consumer's assignment holds only listed topics. Call
    `refresh()` between polls (never from a rebalance callback); `close()` when the consumer
    closes.

    A changed list is applied at most once per SUBSCRIPTION_REFRESH_SECONDS: each subscribe()
    costs a rebalance and a metadata request for every listed topic, so the changes of a burst
    of provisionings wait for the window's end and are applied together. A new version that
    leaves the list as it is is acknowledged at once."""

    def __init__(
        self, consumer: Any, group: str, topics_for: Callable[[frozenset[str]], list[str]]
    ) -> None:
        self.consumer = consumer
        self.topics_for = topics_for
        self.field = f"{socket.gethostname()}:{os.getpid()}/{group}"
        self.topics: list[str] = []
        self.version = -1
        self.acked = (-1, 0.0)  # version, when
        self.resubscribes = 0  # subscribe() calls after the first
        self.subscribed_at = 0.0  # monotonic time of the last subscribe()
        self._seen: tuple[int, frozenset[str] | None] = (-1, None)
        self._wanted: tuple[int, list[str]] = (-1, [])
        self._failing = False

    def start(self, **subscribe_options: Any) -> None:
        self.subscribe_options = subscribe_options
        self._apply(*tenant_directory().snapshot(fresh=True), first=True)

    def refresh(self) -> None:
        try:
            version, slugs = tenant_directory().snapshot()
        except Exception:
            return  # no view yet; the next call tries again
        self._apply(version, slugs)
        self._acknowledge()

    def _apply(self, version: int, slugs: frozenset[str], *, first: bool = False) -> None:
        seen_version, seen_slugs = self._seen
        # The directory hands out the same set until it re-reads the table: compare identity.
        if version != seen_version or slugs is not seen_slugs:
            try:
                wanted = sorted(self.topics_for(slugs))
            except Exception as exc:  # the database away: keep the list, ask again next time
                if first:
                    raise
                if not self._failing:
                    log.warning(
                        "%s: topics not re-read: %s: %s", self.field, type(exc).__name__, exc
                    )
                self._failing = True
                return
            self._failing = False
            self._seen = (version, slugs)
            self._wanted = (version, wanted)
        wanted_version, topics = self._wanted
        if topics != self.topics:
            now = time.monotonic()
            if not first and now - self.subscribed_at < settings.SUBSCRIPTION_REFRESH_SECONDS:
                return  # coalesced with whatever else changes before the window ends
            # An empty list is no subscription (librdkafka refuses subscribe([])).
            if topics:
                self.consumer.subscribe(topics, **self.subscribe_options)
            else:
                self.consumer.unsubscribe()
            self.resubscribes += 0 if first else 1
            self.subscribed_at = now
            self.topics = topics
            log.info(
                "%s: subscribed to %d topics (directory version %d, re-subscription %d)",
                self.field,
                len(topics),
                wanted_version,
                self.resubscribes,
            )
        self.version = wanted_version

    def _acknowledge(self) -> None:
        acked_version, acked_at = self.acked
        now = time.time()
        if acked_version == self.version and now - acked_at < ACK_REFRESH_SECONDS:
            return
        listed = set(self.topics)
        if any(tp.topic not in listed for tp in self.consumer.assignment()):
            return  # still assigned something it left; the rebalance is under way
        try:
            get_redis().hset(
                _key("acks"), self.field, json.dumps({"version": self.version, "at": now})
            )
            self.acked = (self.version, now)
        except Exception as exc:
            log.debug("subscription ack %s: %s", self.field, exc)

    def close(self) -> None:
        try:
            get_redis().hdel(_key("acks"), self.field)
        except Exception as exc:
            log.debug("subscription ack %s: %s", self.field, exc)
