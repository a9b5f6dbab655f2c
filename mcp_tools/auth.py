"""Turning an API key into a Principal, the same way for every surface."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from mcp_tools.auth_throttle import auth_failure_count
from mcp_tools.context import Principal
from mcp_tools.errors import AuthenticationFailed, RateLimited
from tenants.scope import dangerously_unscoped
from tenants.services import InvalidApiKey, api_key_authenticate

log = logging.getLogger(__name__)

# The same answer whether the key is unknown, revoked or its tenant suspended: the reason is
# only logged, so the answer tells a guesser nothing about the keys that exist.
INVALID_KEY = "invalid API key"


def principal_from_api_key(secret: str | None, *, client: str | None = None) -> Principal:
    """The caller behind `secret`; AuthenticationFailed if it is missing, unknown, revoked or its
    tenant is suspended. With `client` (an HTTP caller's address), refusals are counted for it,
    and past AUTH_FAILURES_PER_MINUTE they are RateLimited (429) instead."""
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
    return Principal(tenant=api_key.tenant, api_key=api_key)


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
        self._principal = principal_from_api_key(secret)
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    @property
    def tenant_slug(self) -> str:
        return self._principal.tenant.slug

    def principal(self) -> Principal:
        with self._lock:
            if time.monotonic() - self._checked_at >= settings.MCP_KEY_RECHECK_SECONDS:
                # Raises AuthenticationFailed once the key is revoked, and on every call after.
                self._principal = principal_from_api_key(self._secret)
                self._checked_at = time.monotonic()
            return self._principal
