"""Turning an API key into a Principal, the same way for every surface."""

from __future__ import annotations

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
