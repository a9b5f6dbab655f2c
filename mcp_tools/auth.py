"""Turning an API key into a Principal, the same way for every surface."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db.models.signals import post_save

from mcp_tools.auth_throttle import auth_failure_count
from mcp_tools.context import Principal
from smarteros.errors import AuthenticationFailed, RateLimited
from tenants.scope import dangerously_unscoped
from tenants.services import API_KEY_PREFIX, InvalidApiKey, api_key_authenticate, hash_api_key

log = logging.getLogger(__name__)

# The same answer whether the key is unknown, revoked or its tenant suspended: the reason is
# only logged, so the answer tells a guesser nothing about the keys that exist.
INVALID_KEY = "invalid API key"


class _PrincipalCache:
    """Keys checked in the last API_KEY_CACHE_SECONDS, by the hash of their secret (the secret
    itself is not kept). Only accepted keys are kept: a refusal is looked up (and counted by the
    throttle) every time, and a key created a moment ago works at once."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> Principal | None:
        entry = self._entries.get(hash_api_key(secret))
        if entry is None or entry[0] <= time.monotonic():
            return None
        if entry[1].api_key is not None and entry[1].api_key.is_expired:
            return None  # expired since it was remembered: refused by the next lookup
        return entry[1]

    def put(self, secret: str, principal: Principal) -> None:
        ttl = settings.API_KEY_CACHE_SECONDS
        if ttl <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
            self._entries[hash_api_key(secret)] = (now + ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


principal_cache = _PrincipalCache()


def _forget_principals(**kwargs: Any) -> None:
    # A key or tenant changed through this process (revoked, suspended, scopes edited): its
    # own cache forgets at once; other processes within API_KEY_CACHE_SECONDS.
    principal_cache.clear()


post_save.connect(_forget_principals, sender="tenants.ApiKey", weak=False)
post_save.connect(_forget_principals, sender="tenants.Tenant", weak=False)


def cached_principal(secret: str | None) -> Principal | None:
    """The caller behind `secret` if this process accepted it within API_KEY_CACHE_SECONDS,
    else None. Touches no database, so async code may call it on the event loop."""
    return principal_cache.get(secret) if secret else None


def principal_from_api_key(
    secret: str | None, *, client: str | None = None, cached: bool = True
) -> Principal:
    """The caller behind `secret`; AuthenticationFailed if it is missing, unknown, revoked or its
    tenant is suspended. With `client` (an HTTP caller's address), refusals are counted for it,
    and past AUTH_FAILURES_PER_MINUTE they are RateLimited (429) instead.

    An accepted key is remembered for API_KEY_CACHE_SECONDS (see cached_principal), so revoking
    it or suspending its tenant takes effect within that bound; `cached=False` reads the
    database whatever this process remembers."""
    remembered = cached_principal(secret) if cached else None
    if remembered is not None:
        return remembered
    try:
        # The key is looked up before any tenant is known, hence the one unscoped read.
        with dangerously_unscoped():
            api_key = api_key_authenticate(secret=secret or "")
    except InvalidApiKey as exc:
        log.warning(
            "API key refused: %s (key %s, client %s)", exc, _shown(secret), client or "local"
        )
        retry_after = auth_failure_count(client) if client is not None else None
        if retry_after is not None:
            raise RateLimited(
                f"too many invalid API keys from this address; retry after {retry_after}s",
                retry_after=retry_after,
            ) from None
        raise AuthenticationFailed(INVALID_KEY) from None
    principal = Principal(tenant=api_key.tenant, api_key=api_key)
    assert secret is not None  # api_key_authenticate refuses an empty one
    principal_cache.put(secret, principal)
    return principal


# As for keys: the reason a token is refused is logged, never told.
INVALID_TOKEN = "invalid, expired or revoked access token"


def principal_from_mcp_bearer(secret: str | None, *, client: str) -> Principal:
    """The caller behind the bearer credential of a /mcp request: an API key (exactly as
    principal_from_api_key) or an OAuth access token issued for /mcp (mcp_tools.oauth). OAuth
    tokens are accepted here only, the one resource they are issued for. Refusals are
    AuthenticationFailed, counted per client like bad keys (RateLimited past the limit)."""
    if not secret or secret.startswith(API_KEY_PREFIX):
        return principal_from_api_key(secret, client=client)
    from mcp_tools.oauth.grants import principal_from_oauth_token

    remembered = cached_principal(secret)
    if remembered is not None:
        return remembered
    principal, reason = principal_from_oauth_token(secret)
    if principal is None:
        log.warning("OAuth token refused: %s (client %s)", reason, client)
        retry_after = auth_failure_count(client)
        if retry_after is not None:
            raise RateLimited(
                f"too many invalid tokens from this address; retry after {retry_after}s",
                retry_after=retry_after,
            )
        raise AuthenticationFailed(INVALID_TOKEN)
    principal_cache.put(secret, principal)
    return principal


def _shown(secret: str | None) -> str:
    # Enough to find the key in the admin (its stored prefix), never the secret.
    return f"{secret[:15]}..." if secret else "(none)"


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


class BoundKey:
    """The key a long-running process serves (mcp_serve). Checked at start and again at most
    every MCP_KEY_RECHECK_SECONDS, so revoking the key or suspending its tenant reaches a server
    that is already running, without a lookup on every call. Touches the database: call
    principal() off the event loop."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret
        self._principal = principal_from_api_key(secret, cached=False)
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    @property
    def tenant_slug(self) -> str:
        return self._principal.tenant.slug

    def principal(self) -> Principal:
        with self._lock:
            if time.monotonic() - self._checked_at >= settings.MCP_KEY_RECHECK_SECONDS:
                # Raises AuthenticationFailed once the key is revoked, and on every call after.
                self._principal = principal_from_api_key(self._secret, cached=False)
                self._checked_at = time.monotonic()
            return self._principal
