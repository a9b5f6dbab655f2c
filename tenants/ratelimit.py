"""Per-tenant rate limit shared by every surface (REST, both MCP transports, webhooks), and the
per-source bucket that refused, unauthenticated requests are charged to instead.

A tenant is charged only for authenticated work: a call with its valid key, a webhook delivery
whose signature verified. What is refused before that (an unknown key, an unsigned or forged
delivery, a URL naming no connection) is charged to the client address it came from (IPv6 by
its /64), so nobody can spend a tenant's limit without its credentials, and a source that keeps
sending refused requests is itself refused for a while before any other work is done.

A sliding-window log in Redis: one sorted set per tenant holding one entry per permit granted in
the last 60 seconds, trimmed and counted by one Lua script, so no 60-second window admits more
than the limit (a fixed window would admit twice the limit across a minute boundary). Redis's
own clock is used, so replicas with skewed clocks agree.

A process does not ask Redis for every request: it takes permits in leases that live at most
LEASE_SECONDS and spends them locally, so a busy tenant costs one Redis round trip per lease
rather than per call. A lease starts at one permit and doubles each time one is used up before
it ends, up to 1% of the limit. Permits are logged with the lease's end as their time, so a
permit spent late in its lease still counts for a full window after it: leasing never admits
more than the limit. What a lease did not spend goes back to Redis when the process next needs
a lease for that tenant; until then another replica may see up to 1% of the limit fewer.

When Redis is unreachable the limiter fails open by default (RATE_LIMIT_FAIL_OPEN): refusing every
shop's traffic during a cache outage hurts more than a few minutes without limits. Set it to
false where abuse is the bigger risk.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import redis
from django.conf import settings

from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
LEASE_SECONDS = 1.0
LEASE_SHARE = 0.01  # the largest lease, as a share of the limit
REDIS_RETRY_SECONDS = 1.0  # after Redis failed, how long to answer without asking it

# KEYS[1]: the tenant's log. ARGV: window ms, limit, permits wanted, lease ms, new lease id,
# then the members of the previous lease to give back (unspent permits).
_LEASE_SCRIPT = """
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local want, lease_ms, lease_id = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
if #ARGV > 5 then
  redis.call('ZREM', key, unpack(ARGV, 6))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local grant = math.min(want, limit - redis.call('ZCARD', key))
if grant > 0 then
  local entries = {}
  for i = 1, grant do
    entries[#entries + 1] = now + lease_ms
    entries[#entries + 1] = lease_id .. ':' .. i
    if #entries >= 1000 or i == grant then
      redis.call('ZADD', key, unpack(entries))
      entries = {}
    end
  end
  redis.call('PEXPIRE', key, window + lease_ms)
  return {grant, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int  # permits this process still holds for the tenant
    retry_after: int  # seconds until a request would be admitted


@dataclass
class _Lease:
    lock: threading.Lock = field(default_factory=threading.Lock)
    lease_id: str = ""
    granted: int = 0
    spent: int = 0
    ends_at: float = 0.0  # time.monotonic()
    next_size: int = 1
    redis_down_until: float = 0.0
    denied_until: float = 0.0  # the last renewal was refused until then

    def unspent_members(self) -> list[str]:
        return [f"{self.lease_id}:{i}" for i in range(self.spent + 1, self.granted + 1)]


class _Leases:
    """This process's leases, one per tenant, each renewed under its own lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_tenant: dict[str, _Lease] = {}

    MAX_BUCKETS = 10_000  # per process; sources are many, and each holds a lease

    def hit(self, tenant_slug: str, limit: int) -> RateDecision:
        lease = self._by_tenant.get(tenant_slug)
        if lease is None:
            with self._lock:
                if len(self._by_tenant) >= self.MAX_BUCKETS:
                    self._prune()
                lease = self._by_tenant.setdefault(tenant_slug, _Lease())
        with lease.lock:
            now = time.monotonic()
            if lease.spent < lease.granted and now < lease.ends_at:
                lease.spent += 1
                return RateDecision(True, limit, lease.granted - lease.spent, 0)
            if now < lease.redis_down_until:
                return _redis_down_decision(limit)
            return self._renew(lease, tenant_slug, limit, now)

    def _renew(self, lease: _Lease, tenant_slug: str, limit: int, now: float) -> RateDecision:
        if lease.granted:
            used_up = lease.spent >= lease.granted and now < lease.ends_at
            lease.next_size = lease.next_size * 2 if used_up else max(1, lease.spent)
        want = min(lease.next_size, max(1, int(limit * LEASE_SHARE)))
        lease_id = secrets.token_hex(6)
        try:
            granted, retry_ms = get_redis().eval(
                _LEASE_SCRIPT,
                1,
                f"smarteros:ratelimit:{tenant_slug}",
                WINDOW_MS,
                limit,
                want,
                int(LEASE_SECONDS * 1000),
                lease_id,
                *lease.unspent_members(),
            )
        except redis.RedisError as exc:
            # Wait a moment before asking again: during an outage every request would
            # otherwise sit through a connect timeout.
            lease.redis_down_until = now + REDIS_RETRY_SECONDS
            log.warning(
                "rate limiter unavailable (%s); failing %s",
                exc,
                "open" if settings.RATE_LIMIT_FAIL_OPEN else "closed",
            )
            return _redis_down_decision(limit)
        # The previous lease is settled (its unspent permits given back) whatever the answer.
        lease.lease_id, lease.granted, lease.ends_at = lease_id, int(granted), now + LEASE_SECONDS
        lease.next_size = want
        lease.spent = min(1, lease.granted)
        if not lease.granted:
            retry_after = max(1, -(-int(retry_ms) // 1000))
            lease.denied_until = now + retry_after
            return RateDecision(False, limit, 0, retry_after)
        return RateDecision(True, limit, lease.granted - 1, 0)

    def denied_for(self, key: str) -> int:
        """Seconds this process last heard that `key` is refused for; 0 if not (no Redis)."""
        lease = self._by_tenant.get(key)
        left = lease.denied_until - time.monotonic() if lease is not None else 0
        return max(0, -int(-left // 1))

    def _prune(self) -> None:
        # Buckets with nothing leased and nothing refused; their permits are all in Redis.
        now = time.monotonic()
        idle = [
            key
            for key, lease in self._by_tenant.items()
            if lease.ends_at <= now and lease.denied_until <= now
        ]
        for key in idle:
            del self._by_tenant[key]
        if len(self._by_tenant) >= self.MAX_BUCKETS:
            # All busy: forgetting unspent permits only makes their buckets stricter for a minute.
            self._by_tenant.clear()

    def forget(self) -> None:
        with self._lock:
            self._by_tenant.clear()


def _redis_down_decision(limit: int) -> RateDecision:
    return RateDecision(settings.RATE_LIMIT_FAIL_OPEN, limit, 0, 60)


_leases = _Leases()


def rate_limit_hit(*, tenant_slug: str, limit: int | None = None) -> RateDecision:
    """Count one request for the tenant and say whether it is within its per-minute limit."""
    return _leases.hit(tenant_slug, limit or settings.RATE_LIMIT_PER_MINUTE)


def source_key(address: str) -> str:
    """The bucket a client address is charged to: IPv4 by address, IPv6 by its /64 (one host
    commonly holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "source:unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"source:{ip.ipv4_mapped}"
        return f"source:{ipaddress.IPv6Network((ip, 64), strict=False).network_address}/64"
    return f"source:{ip}"


def source_refusal_hit(*, address: str) -> RateDecision:
    """Charge one refused, unauthenticated request to the bucket of the address it came from
    (REFUSALS_PER_SOURCE_PER_MINUTE); never a tenant's."""
    return _leases.hit(source_key(address), settings.REFUSALS_PER_SOURCE_PER_MINUTE)


def source_refused_for(*, address: str) -> int:
    """Seconds for which requests from `address` are refused because it used up its refusals
    (0 if not), as this process last heard from Redis: no round trip."""
    return _leases.denied_for(source_key(address))


def rate_limit_forget_leases() -> None:
    """Drop this process's leases without giving them back (tests, after Redis was flushed)."""
    _leases.forget()


def rate_limit_usage(*, tenant_slug: str) -> int | None:
    """Permits the tenant holds in the current 60-second window (leased ones included), without
    taking one; None if Redis cannot be asked."""
    client = get_redis()
    try:
        seconds, micros = client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return int(client.zcount(f"smarteros:ratelimit:{tenant_slug}", now_ms - WINDOW_MS, "+inf"))
    except redis.RedisError:
        return None
