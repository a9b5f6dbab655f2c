"""Per-tenant rate limit shared by every surface (REST, both MCP transports, webhooks).

A fixed one-minute window per tenant in Redis: INCR then EXPIRE in one round trip. Exact within
a window. When Redis is unreachable the limiter fails open by default (RATE_LIMIT_FAIL_OPEN),
because refusing every shop's traffic during a cache outage is worse than a minute without
limits; set it to false where abuse is the bigger risk.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int


def rate_limit_hit(*, tenant_slug: str, limit: int | None = None) -> RateDecision:
    """Count one request for the tenant and say whether it is within its per-minute limit."""
    limit = limit or settings.RATE_LIMIT_PER_MINUTE
    now = time.time()
    window = int(now // 60)
    key = f"smarteros:ratelimit:{tenant_slug}:{window}"
    retry_after = max(1, 60 - int(now % 60))
    try:
        client = get_redis()
        count = int(client.incr(key))
        if count == 1:
            # First hit of the window; the key outlives it a little so clocks may differ.
            client.expire(key, 120)
    except redis.RedisError as exc:
        log.warning(
            "rate limiter unavailable (%s); failing %s",
            exc,
            "open" if settings.RATE_LIMIT_FAIL_OPEN else "closed",
        )
        return RateDecision(settings.RATE_LIMIT_FAIL_OPEN, limit, 0, retry_after)
    return RateDecision(count <= limit, limit, max(0, limit - count), retry_after)
