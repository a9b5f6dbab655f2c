"""Consents (OAuthGrant) and the Principal behind an OAuth access token."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken

from mcp_tools.context import Principal
from mcp_tools.models import OAuthGrant
from mcp_tools.oauth.scopes import scopes_for_role
from tenants.audit import audit_record
from tenants.models import Membership, Tenant
from tenants.scope import dangerously_unscoped, tenant_scope
from tenants.services import api_key_create, api_key_revoke

log = logging.getLogger(__name__)

# Tenants in these states serve no call, whatever the token (as for API keys).
CLOSED_STATES = (Tenant.Status.SUSPENDED, Tenant.Status.DELETED)


def mcp_resource_url() -> str:
    """This server's /mcp URL: the one audience (RFC 8707 `resource`) its tokens are bound to."""
    return settings.SMARTEROS_PUBLIC_URL.rstrip("/") + "/mcp"


def resource_metadata_url() -> str:
    """Where /mcp's protected-resource metadata lives (RFC 9728 path-suffixed form)."""
    return settings.SMARTEROS_PUBLIC_URL.rstrip("/") + "/.well-known/oauth-protected-resource/mcp"


def oauth_actor(application: Application) -> str:
    """How the audit log and the keys page name an OAuth client."""
    return f"oauth:{application.client_id}"


def oauth_grant_create(
    *, user: Any, application: Application, tenant: Tenant, scopes: list[str], actor: str
) -> OAuthGrant:
    """Record a person's consent: `application` may act for `tenant` with `scopes` (validated
    against the registry; never platform scopes). Audited as oauth.grant. Raises
    ValidationError for a bad scope."""
    with tenant_scope(tenant.pk):
        # The secret is discarded: the row carries tenant and scopes, it is no usable key.
        issued = api_key_create(tenant=tenant, name=oauth_actor(application)[:100], scopes=scopes)
        audit_record(
            actor=actor,
            action="oauth.grant",
            tenant=tenant,
            target=f"tenants.ApiKey:{issued.api_key.pk}",
            details={
                "client_id": application.client_id,
                "client_name": application.name,
                "redirect_uris": application.redirect_uris,
                "scopes": issued.api_key.scopes,
            },
        )
        return OAuthGrant.objects.create(api_key=issued.api_key, application=application, user=user)


def grant_refusal(grant: OAuthGrant) -> str | None:
    """Why the grant no longer works (revoked, tenant closed, the person gone or no longer
    allowed its scopes), or None while it does. Reads across tenants: call it unscoped."""
    api_key = grant.api_key
    if api_key.revoked_at is not None:
        return "grant revoked"
    if api_key.tenant.status in CLOSED_STATES:
        return f"tenant {api_key.tenant.slug} is {api_key.tenant.status}"
    user = grant.user
    if not user.is_active:
        return "the person who consented is inactive"
    if user.is_superuser:
        return None
    role = (
        Membership.objects.filter(user_id=user.pk, tenant_id=api_key.tenant_id)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        return "the person who consented is no longer a member of the tenant"
    if scopes_for_role(api_key.scopes or [], role=role):
        return "the person who consented may no longer grant these scopes"
    return None


def principal_from_oauth_token(token: str) -> tuple[Principal | None, str]:
    """The Principal behind an OAuth access token presented at /mcp, or None and the reason
    (unknown, expired, revoked, another audience, the grant no longer valid)."""
    checksum = hashlib.sha256(token.encode()).hexdigest()
    with dangerously_unscoped():
        access = AccessToken.objects.filter(token_checksum=checksum).first()
        if access is None:
            return None, "unknown token"
        if access.is_expired():
            return None, "expired token"
        if list(access.resource or []) != [mcp_resource_url()]:
            return None, "token issued for another resource"
        grant = (
            OAuthGrant.objects.select_related("api_key__tenant", "user")
            .filter(access_tokens=access)
            .first()
        )
        if grant is None:
            return None, "token not issued by a consent"
        refusal = grant_refusal(grant)
        if refusal is not None:
            return None, refusal
        return Principal(tenant=grant.api_key.tenant, api_key=grant.api_key), ""


def oauth_grant_revoke(*, grant: OAuthGrant, actor: str) -> None:
    """End a consent: its key row is revoked and every token issued for it stops. Audited.
    `grant.api_key` must be loaded (as grant_for_token and the keys page do)."""
    api_key = grant.api_key
    with tenant_scope(api_key.tenant_id):
        AccessToken.objects.filter(pk__in=grant.access_tokens.values("pk")).delete()
        RefreshToken.objects.filter(
            pk__in=grant.refresh_tokens.values("pk"), revoked__isnull=True
        ).update(revoked=timezone.now())
        if api_key.revoked_at is None:
            api_key_revoke(api_key=api_key)
            audit_record(
                actor=actor,
                action="oauth.revoke",
                tenant=api_key.tenant,
                target=f"tenants.ApiKey:{api_key.pk}",
                details={"client_id": grant.application.client_id},
            )
