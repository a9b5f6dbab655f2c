"""Concurrent work per operator (and live viewers per tenant), counted in Redis across web
processes: live viewers, open sockets, browses and exports.

Each holder takes a lease (a sorted-set member whose score is its expiry) in its user's set
and, for a tenant's live viewer, in the tenant's set; it renews the lease while it lives, so a
process that dies frees its slots within LEASE_SECONDS. A full set is refused with a message
that names the limit (the websocket's error frame, HTTP 429).
"""

from __future__ import annotations

import time

from django.conf import settings

from smarteros.infra.redis import get_redis

LEASE_SECONDS = 60
RENEW_SECONDS = 20

# KEYS: the sets; ARGV: now, expiry, member, then one limit per key. Returns 0 when granted,
# otherwise the 1-based index of the set that is full.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  if redis.call('ZSCORE', key, ARGV[3]) == false and
     redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, math.ceil(2 * (tonumber(ARGV[2]) - tonumber(ARGV[1]))))
end
return 0
"""


# What one operator may hold at once: the setting that bounds it, and its name in a refusal.
WORK = {
    "sockets": ("TOPICS_MAX_SOCKETS_PER_USER", "topic viewer connections"),
    "browses": ("TOPICS_MAX_BROWSES_PER_USER", "browses running"),
    "exports": ("TOPICS_MAX_EXPORTS_PER_USER", "exports running"),
}


class ViewerLimitReached(Exception):
    """A per-operator or per-tenant limit of the viewer is full; the message names it."""


def _acquire(keys: list[tuple[str, int, str]], lease: str, noun: str) -> None:
    now = time.time()
    full = int(
        get_redis().eval(
            _ACQUIRE,
            len(keys),
            *[k for k, _, _ in keys],
            now,
            now + LEASE_SECONDS,
            lease,
            *[limit for _, limit, _ in keys],
        )
    )
    if full:
        _, limit, who = keys[full - 1]
        raise ViewerLimitReached(f"{who} {limit} {noun} already; close one first")


def _work_key(kind: str, user_id: int) -> tuple[str, int, str]:
    setting, _ = WORK[kind]
    return (f"smarteros:topics:{kind}:user:{user_id}", getattr(settings, setting), "you have")


def work_acquire(kind: str, *, user_id: int, lease: str) -> None:
    """Take (or renew) one of the operator's slots of `kind` (sockets, browses, exports);
    ViewerLimitReached when all are taken."""
    _acquire([_work_key(kind, user_id)], lease, WORK[kind][1])


def work_release(kind: str, *, user_id: int, lease: str) -> None:
    """Give the slot back."""
    get_redis().zrem(_work_key(kind, user_id)[0], lease)


def _keys(user_id: int, tenant_id: int | None) -> list[tuple[str, int, str]]:
    prefix = "smarteros:topics:viewers"
    keys = [(f"{prefix}:user:{user_id}", settings.TOPICS_MAX_VIEWERS_PER_USER, "you have")]
    if tenant_id is not None:
        keys.append(
            (
                f"{prefix}:tenant:{tenant_id}",
                settings.TOPICS_MAX_VIEWERS_PER_TENANT,
                "this tenant has",
            )
        )
    return keys


def viewer_acquire(*, user_id: int, tenant_id: int | None, lease: str) -> None:
    """Take (or renew) one live-viewer slot; ViewerLimitReached names the limit that is full."""
    _acquire(_keys(user_id, tenant_id), lease, "live viewers open")


def viewer_release(*, user_id: int, tenant_id: int | None, lease: str) -> None:
    """Give the slot back (a socket closing, or switching topics)."""
    pipe = get_redis().pipeline()
    for key, _, _ in _keys(user_id, tenant_id):
        pipe.zrem(key, lease)
    pipe.execute()
