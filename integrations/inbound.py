"""The checks every webhook delivery passes, cheapest first, before it is accepted:

1. the source: an address that used up its refusals (REFUSALS_PER_SOURCE_PER_MINUTE) gets 429
   before any other work;
2. size: Content-Length over WEBHOOK_MAX_BODY_BYTES is 413 before the body is read;
3. the tenant's connection to the provider, then the signature with its signing secret (only
   now is Vault asked; a decrypted secret stays in this process's memory for
   WEBHOOK_SECRET_CACHE_SECONDS). Whatever fails here (unknown tenant, suspended tenant, provider
   not connected, no secret, bad or missing signature) gets one identical answer, UNVERIFIED, so
   nothing about what is connected can be learnt from outside;
4. the tenant's rate limit, charged only now that the delivery is the provider's;
5. the payload's shape, with the provider's schema (400);
6. the provider's external id in the delivery against the connection's (403).

Each refusal is a Refused error: a clear status and JSON body, a log line and a counter with the
real reason, and nothing stored. A refusal before the signature verified is charged to the
source's bucket, never to the tenant's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import hvac.exceptions
from django.conf import settings
from django.http import HttpRequest, JsonResponse

from integrations.connections import connection_credentials
from integrations.models import IntegrationConnection
from smarteros.db import row_where
from smarteros.errors import DependencyUnavailable, OperationError
from smarteros.infra.redis import get_redis
from smarteros.parsing import InvalidValue, parse_content_length
from tenants.models import Tenant
from tenants.ratelimit import rate_limit_hit, source_refusal_hit, source_refused_for
from tenants.scope import dangerously_unscoped, tenant_read_scope

log = logging.getLogger(__name__)

REFUSED_COUNTER = "smarteros:webhooks:refused:{provider}"


class Refused(OperationError):
    """A delivery refused before anything was stored; `reason` is the counter's label."""

    def __init__(self, message: str, *, status: int, code: str, reason: str) -> None:
        super().__init__(message)
        self.http_status = status
        self.code = code
        self.reason = reason
        self.retry_after = 0
        self.detail = ""  # for the log line only, when the answer must not say it


@dataclass(frozen=True)
class WebhookSpec:
    """How a provider signs and identifies its deliveries."""

    provider: str
    secret_key: str  # the credential that holds the signing secret
    signature_header: str
    encode: Callable[[bytes], str]  # HMAC-SHA256 digest -> the header's form
    external_id_name: str  # what the delivery calls the connection's external id
    # A provider whose signature is not an HMAC of the body alone (Svix): (secret, body,
    # headers) -> None if signed, else (reason, message).
    verify: Callable[[str, bytes, Mapping[str, str]], tuple[str, str] | None] | None = None
    # The external id is compared only when the connection names one (Clerk's instance_id).
    external_id_optional: bool = False


def _base64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _sha256_hex(digest: bytes) -> str:
    return "sha256=" + digest.hex()


SHOPIFY = WebhookSpec(
    "shopify", "app_secret", "X-Shopify-Hmac-Sha256", _base64, "X-Shopify-Shop-Domain"
)
WHATSAPP = WebhookSpec(
    "whatsapp", "app_secret", "X-Hub-Signature-256", _sha256_hex, "metadata.phone_number_id"
)
N8N = WebhookSpec("n8n", "webhook_secret", "X-SmarterOS-Signature", _sha256_hex, "")


def _svix(secret: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, str] | None:
    from integrations.clerk.signatures import svix_problem

    return svix_problem(secret, body, headers)


CLERK = WebhookSpec(
    "clerk",
    "signing_secret",
    "svix-signature",
    _base64,
    "instance_id",
    verify=_svix,
    external_id_optional=True,
)


# The one answer to a delivery that is not verified as the provider's, whatever the reason.
UNVERIFIED_MESSAGE = "no connection at this URL accepts this delivery: unsigned or wrongly signed"


def unverified(reason: str, detail: str = "") -> Refused:
    """The refusal of a delivery whose signature did not verify: the same status and body for
    every `reason` and `detail` (which only the log line and the counter see)."""
    refused = Refused(UNVERIFIED_MESSAGE, status=401, code="unauthenticated", reason=reason)
    refused.detail = detail
    return refused


def webhook_tenant(slug: str) -> Tenant | None:
    """The tenant a webhook URL names, whatever its status."""
    if len(slug) > Tenant._meta.get_field("slug").max_length:  # type: ignore[operator]
        return None
    # The tenants table is under RLS and the URL's slug is not yet trusted: a platform read.
    with dangerously_unscoped(atomic=False):
        return row_where(Tenant, slug=slug)


def source_check(address: str) -> None:
    """429 for a client address that used up its refusals this minute (known locally, no
    round trip): it gets no other work done."""
    retry_after = source_refused_for(address=address)
    if retry_after:
        refused = Refused(
            f"too many refused requests from this address; retry after {retry_after}s",
            status=429,
            code="rate_limited",
            reason="source_limited",
        )
        refused.retry_after = retry_after
        raise refused


def source_charge(address: str) -> None:
    """Charge one refused delivery to its source's bucket (never the tenant's)."""
    source_refusal_hit(address=address)


def rate_limit_check(*, slug: str, tenant: Tenant | None) -> None:
    """Count a verified delivery against its tenant's per-minute limit: 429 past it."""
    limit = tenant.rate_limit_per_minute if tenant is not None else None
    decision = rate_limit_hit(tenant_slug=slug, limit=limit)
    if not decision.allowed:
        refused = Refused(
            f"rate limit of {decision.limit} requests per minute reached; "
            f"retry after {decision.retry_after}s",
            status=429,
            code="rate_limited",
            reason="rate_limited",
        )
        refused.retry_after = decision.retry_after
        raise refused


def body_read(request: HttpRequest) -> bytes:
    """The body, at most WEBHOOK_MAX_BODY_BYTES; 413 from Content-Length before reading."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    too_large = Refused(
        f"body larger than {limit} bytes", status=413, code="payload_too_large", reason="too_large"
    )
    try:
        declared = parse_content_length(request.META.get("CONTENT_LENGTH"))
    except InvalidValue:
        declared = 0  # the server framed the body; the read below is bounded either way
    if declared > limit:
        raise too_large
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def webhook_connection(*, tenant: Tenant | None, provider: str) -> IntegrationConnection:
    """The active tenant's connection to `provider`; UNVERIFIED otherwise (the same answer for
    an unknown tenant, a suspended one, or one not connected: the URL alone reveals nothing)."""
    connection = None
    if tenant is not None and tenant.status == Tenant.Status.ACTIVE:
        with tenant_read_scope(tenant.pk):
            connection = row_where(IntegrationConnection, tenant_id=tenant.pk, provider=provider)
    if connection is None or not connection.credentials_ciphertext:
        raise unverified("not_connected")
    connection.tenant = tenant  # type: ignore[assignment]
    return connection


def external_ids_check(
    spec: WebhookSpec, connection: IntegrationConnection, claimed: Iterable[str]
) -> None:
    """Every external id the delivery names must be the connection's (403 otherwise)."""
    if spec.external_id_optional and not connection.external_id:
        return
    for value in claimed:
        if not connection.external_id or not hmac.compare_digest(
            value.encode(), connection.external_id.encode()
        ):
            raise Refused(
                f"{spec.external_id_name} {value!r} is not the {spec.provider} account "
                f"connected at this URL",
                status=403,
                code="permission_denied",
                reason="foreign_delivery",
            )


def signature_check(
    spec: WebhookSpec,
    connection: IntegrationConnection,
    body: bytes,
    signature: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """HMAC-SHA256 of the raw body with the connection's signing secret, or the provider's own
    scheme (`spec.verify`, given all `headers`); UNVERIFIED otherwise."""
    secret = signing_secret(connection, spec.secret_key)
    if not secret:
        raise unverified(
            "no_secret",
            f"the {spec.provider} connection has no {spec.secret_key}; an operator adds it",
        )
    if spec.verify is not None:
        problem = spec.verify(secret, body, headers or {})
        if problem is not None:
            reason, message = problem
            raise unverified(reason, message)
        return
    expected = spec.encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise unverified("bad_signature")


class _SecretCache:
    """Decrypted signing secrets, in memory only, keyed by connection and its last change, so a
    rotated secret is used at once and a flood of deliveries costs one Vault call a minute."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str, float], tuple[float, str]] = {}

    def get(self, connection: IntegrationConnection, key: str) -> str:
        ttl = settings.WEBHOOK_SECRET_CACHE_SECONDS
        cache_key = (connection.pk, key, connection.updated_at.timestamp())
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            credentials = connection_credentials(connection)
        except hvac.exceptions.VaultError as exc:
            # A missing key or a refused token is the platform's fault, never the sender's.
            raise DependencyUnavailable(
                f"Vault could not decrypt the {connection.provider} connection's secret: "
                f"{type(exc).__name__}"
            ) from None
        secret = str(credentials.get(key) or "") if isinstance(credentials, dict) else ""
        if ttl:
            with self._lock:
                for stale in [k for k, (until, _) in self._entries.items() if until <= now]:
                    del self._entries[stale]
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[cache_key] = (now + ttl, secret)
        return secret

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_secrets = _SecretCache()


def signing_secret(connection: IntegrationConnection, key: str) -> str:
    """The connection's signing secret `key` (empty if it has none), cached briefly."""
    return _secrets.get(connection, key)


def signing_secrets_forget() -> None:
    """Drop the cached secrets of this process (tests)."""
    _secrets.clear()


def refusal_response(provider: str, slug: str, refused: Refused) -> JsonResponse:
    """The refusal's JSON answer, after a log line and a count per provider and reason."""
    log.warning(
        "webhook refused: provider=%s tenant=%s reason=%s status=%s: %s",
        provider,
        slug,
        refused.reason,
        refused.http_status,
        refused.detail or refused.message,
    )
    try:
        get_redis().hincrby(REFUSED_COUNTER.format(provider=provider), refused.reason, 1)
    except Exception:
        log.warning("could not count the refused webhook")
    response = JsonResponse(refused.as_dict(), status=refused.http_status)
    if refused.retry_after:
        response["Retry-After"] = str(refused.retry_after)
    return response


def refused_count(provider: str, reason: str) -> int:
    """How many deliveries of `provider` were refused for `reason` (all processes)."""
    value: Any = get_redis().hget(REFUSED_COUNTER.format(provider=provider), reason)
    return int(value or 0)
