"""Turning an API key into a Principal, the same way for every surface."""

from __future__ import annotations

import threading
import time

from django.conf import settings

from mcp_tools.context import Principal
from mcp_tools.errors import AuthenticationFailed
from tenants.scope import dangerously_unscoped
from tenants.services import InvalidApiKey, api_key_authenticate


def principal_from_api_key(secret: str | None) -> Principal:
    """The caller behind `secret`; AuthenticationFailed if it is missing, unknown or revoked."""
    try:
        # The key is looked up before any tenant is known, hence the one unscoped read.
        with dangerously_unscoped():
            api_key = api_key_authenticate(secret=secret or "")
    except InvalidApiKey as exc:
        raise AuthenticationFailed(f"invalid API key: {exc}") from None
    return Principal(tenant=api_key.tenant, api_key=api_key)


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
