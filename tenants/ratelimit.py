"""Per-tenant rate limit shared by every surface (REST, both MCP transports, webhooks).

A sliding-window log in Redis: one sorted set per tenant holding the times of the requests of the
last 60 seconds, trimmed and counted by one Lua script, so no 60-second window ever admits more
than the limit (a fixed window would admit twice the limit across a minute boundary). Redis's own
clock is used, so replicas with skewed clocks agree.

When Redis is unreachable the limiter fails open by default (RATE_LIMIT_FAIL_OPEN): refusing every
shop's traffic during a cache outage hurts more than a few minutes without limits. Set it to
false where abuse is the bigger risk.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import redis
from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

WINDOW_MS = 60_000

_SCRIPT = """
local key, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until a request would be admitted


def rate_limit_hit(*, tenant_slug: str, limit: int | None = None) -> RateDecision:
    """Count one request for the tenant and say whether it is within its per-minute limit."""
    limit = limit or settings.RATE_LIMIT_PER_MINUTE
    key = f"smarteros:ratelimit:{tenant_slug}"
    try:
        allowed, remaining, retry_ms = get_redis().eval(
            _SCRIPT, 1, key, WINDOW_MS, limit, secrets.token_hex(8)
        )
    except redis.RedisError as exc:
        fail_open = settings.RATE_LIMIT_FAIL_OPEN
        log.warning(
            "rate limiter unavailable (%s); failing %s", exc, "open" if fail_open else "closed"
        )
        return RateDecision(fail_open, limit, 0, 60)
    return RateDecision(bool(allowed), limit, int(remaining), max(1, -(-int(retry_ms) // 1000)))
