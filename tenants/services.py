"""Tenant and API-key writes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants.models import ApiKey, Tenant

API_KEY_PREFIX = "sos_live_"
# ApiKey.last_used_at is kept to this resolution: one row write per key and minute at most,
# not one per authenticated call (every call would otherwise write the same hot row).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedApiKey:
    """A freshly created key: `secret` exists only here and is never stored."""

    api_key: ApiKey
    secret: str


def hash_api_key(secret: str) -> str:
    # The secret has 256 bits of entropy, so a plain SHA-256 is not brute-forceable.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def tenant_create(
    *, slug: str, name: str, plan: str = Tenant.Plan.FREE, contact_email: str = ""
) -> Tenant:
    """Create a tenant in `pending` state after validating slug, name, plan and email."""
    tenant = Tenant(slug=slug, name=name, plan=plan, contact_email=contact_email)
    tenant.full_clean()
    tenant.save()
    return tenant


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: list[str] | None = None,
    platform_allowed: bool = False,
    expires_at: datetime | None = None,
) -> IssuedApiKey:
    """Issue a new key for `tenant`; the returned secret is the only copy. `scopes` (default
    `["*"]`, the ordinary permissions) must name registry permissions or operations; platform
    scopes need `platform_allowed` (the grantor is a platform admin). ValidationError otherwise."""
    from tenants.scopes import scopes_validate

    granted = scopes_validate(
        scopes if scopes is not None else ["*"], platform_allowed=platform_allowed
    )
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=secret[: len(API_KEY_PREFIX) + 6],
        key_hash=hash_api_key(secret),
        scopes=granted,
        expires_at=expires_at,
    )
    return IssuedApiKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


class InvalidApiKey(Exception):
    """The key is missing, unknown or revoked (deliberately not saying which)."""


def api_key_authenticate(*, secret: str) -> ApiKey:
    """The active key whose secret this is, with its tenant, or InvalidApiKey. Records the use
    in `last_used_at`, to LAST_USED_RESOLUTION."""
    if not secret or not secret.startswith(API_KEY_PREFIX):
        raise InvalidApiKey("missing or malformed API key")
    try:
        api_key = ApiKey.objects.select_related("tenant").get(key_hash=hash_api_key(secret))
    except ApiKey.DoesNotExist:
        raise InvalidApiKey("unknown API key") from None
    if api_key.revoked_at is not None:
        raise InvalidApiKey("revoked API key")
    if api_key.is_expired:
        raise InvalidApiKey("expired API key")
    if api_key.tenant.status in (Tenant.Status.SUSPENDED, Tenant.Status.DELETED):
        raise InvalidApiKey(f"tenant {api_key.tenant.slug} is {api_key.tenant.status}")
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at <= stale:
        # Conditional, so concurrent processes that all saw a stale value write the row once.
        ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=api_key.pk
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)
