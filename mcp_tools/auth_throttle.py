"""Throttling of bad API keys per client address, so a key-guessing loop is slowed down.

A fixed one-minute window per client in Redis counts refused keys; past
AUTH_FAILURES_PER_MINUTE, further refusals are answered 429 instead of 401. A good key is never
throttled, so tenants sharing an address with a guesser keep working. Redis down: refusals are
not counted (logged), as the tenant rate limit fails open.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# Every refused key, all clients (no tenant to record it under), as webhooks count theirs.
REFUSED_COUNTER = "smarteros:auth:rejected"


def auth_failure_count(client: str) -> int | None:
    """Count one refused key for `client`; the seconds it must wait if it is now over the
    limit, else None."""
    key = f"smarteros:authfail:{client}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(REFUSED_COUNTER)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS, nx=True)
        pipe.ttl(key)
        _, count, _, ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("auth throttle unavailable (%s); refusal not counted", exc)
        return None
    if int(count) > settings.AUTH_FAILURES_PER_MINUTE:
        log.warning("invalid API keys from %s throttled (%s this minute)", client, count)
        return max(1, int(ttl))
    return None
