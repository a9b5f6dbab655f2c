"""The toolkit's validator, bound to SmarterOS consents: codes and tokens are linked to the
OAuthGrant a person gave on the console, the only audience is this server's /mcp, and a grant
that stopped working (revoked, tenant closed, membership removed) issues nothing more."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from oauth2_provider.models import AccessToken, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from mcp_tools.models import OAuthGrant
from mcp_tools.oauth.grants import grant_refusal, mcp_resource_url, oauth_actor, oauth_grant_revoke
from tenants.scope import dangerously_unscoped

log = logging.getLogger(__name__)


def _usable(grants: Any) -> bool:
    # Reads the key, tenant and membership of any tenant: the one unscoped read here.
    with dangerously_unscoped():
        grant = grants.select_related("api_key__tenant", "user").first()
        refusal = "no consent behind it" if grant is None else grant_refusal(grant)
    if refusal is not None:
        log.info("OAuth grant refused: %s", refusal)
    return refusal is None


class GrantValidator(OAuth2Validator):
    """OAuth2Validator with SmarterOS's audience and consent rules."""

    def _validate_resource_uris(self, request: Any, resources: Any) -> None:
        super()._validate_resource_uris(request, resources)
        for resource in resources:
            if resource != mcp_resource_url():
                raise errors.CustomOAuth2Error(
                    error="invalid_target",
                    description=f"tokens are issued for {mcp_resource_url()} only",
                    request=request,
                )

    def _create_authorization_code(self, request: Any, code: Any, expires: Any = None) -> Any:
        grant = super()._create_authorization_code(request, code, expires)
        # Set by the consent page (credentials of create_authorization_response); a code
        # without it is refused at the token endpoint (validate_code finds no consent).
        grant_id = getattr(request, "smarteros_grant_id", None)
        if grant_id is not None:
            OAuthGrant.objects.filter(pk=grant_id).update(code=grant)
        return grant

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        return _usable(OAuthGrant.objects.filter(code__code=code, application=client))

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        return _usable(OAuthGrant.objects.filter(refresh_tokens=request.refresh_token_instance))

    def _create_access_token(
        self, expires: Any, request: Any, token: Any, source_refresh_token: Any = None
    ) -> Any:
        access = super()._create_access_token(expires, request, token, source_refresh_token)
        if request.grant_type == "authorization_code":
            grants = OAuthGrant.objects.filter(code__code=request.code, application=request.client)
        else:
            previous = source_refresh_token or getattr(request, "refresh_token_instance", None)
            grants = OAuthGrant.objects.filter(refresh_tokens=previous)
        grant = grants.first()
        if grant is not None:
            grant.access_tokens.add(access)
            request.smarteros_grant = grant
        return access

    def _create_refresh_token(
        self, request: Any, refresh_token_code: Any, access_token: Any, previous: Any
    ) -> Any:
        refresh = super()._create_refresh_token(request, refresh_token_code, access_token, previous)
        grant = getattr(request, "smarteros_grant", None)
        if grant is not None:
            grant.refresh_tokens.add(refresh)
        return refresh

    def revoke_token(
        self, token: str, token_type_hint: Any, request: Any, *args: Any, **kwargs: Any
    ) -> None:
        """RFC 7009: revoking either token of a consent ends the consent (its key row on the
        console shows it revoked), audited under the client's name."""
        checksum = hashlib.sha256(token.encode()).hexdigest()
        client_pk = getattr(request.client, "pk", None) or 0
        with dangerously_unscoped():
            grant = (
                OAuthGrant.objects.select_related("api_key__tenant", "application")
                .filter(application_id=client_pk)
                .filter(
                    pk__in=[
                        *OAuthGrant.objects.filter(
                            access_tokens__in=AccessToken.objects.filter(token_checksum=checksum)
                        ).values_list("pk", flat=True),
                        *OAuthGrant.objects.filter(
                            refresh_tokens__in=RefreshToken.objects.filter(token_checksum=checksum)
                        ).values_list("pk", flat=True),
                    ]
                )
                .first()
            )
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        if grant is not None:
            oauth_grant_revoke(grant=grant, actor=oauth_actor(grant.application))
