"""Svix webhook signatures, as Clerk's deliveries carry them (Svix's "verifying manually").

Headers: svix-id (the message id, the same on every retry), svix-timestamp (Unix seconds) and
svix-signature (space-separated `v1,<base64>` entries; several during a secret rotation, any
one matching is enough). The signed content is `{svix-id}.{svix-timestamp}.{raw body}`, the
HMAC-SHA256 key the base64 part of the endpoint's `whsec_...` signing secret. A timestamp
further than the tolerance from now, either way, is refused so a captured delivery cannot be
replayed later.

Svix implements Standard Webhooks, which names the same three headers webhook-id,
webhook-timestamp and webhook-signature (same values, same signature): either family is
accepted, the svix-* one when both are present.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from django.conf import settings

from smarteros.parsing import InvalidValue, parse_unix_time

SECRET_PREFIX = "whsec_"
HEADER_FAMILIES = ("svix", "webhook")


def svix_headers(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    """(family, id, timestamp, signature) of the delivery: its svix-* headers, else its
    Standard Webhooks webhook-* ones; ("svix", "", "", "") if it has neither."""
    for family in HEADER_FAMILIES:
        values = [headers.get(f"{family}-{name}", "") for name in ("id", "timestamp", "signature")]
        if any(values):
            return family, values[0], values[1], values[2]
    return "svix", "", "", ""


def svix_secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` signing secret; ValueError if it is not one."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def svix_sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` signature Svix sends for this delivery."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(svix_secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def svix_problem(secret: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, str] | None:
    """None if the delivery is signed by `secret` within the tolerance; else (reason, message)
    naming the header at fault."""
    family, msg_id, timestamp, signatures = svix_headers(headers)
    try:
        sent = parse_unix_time(timestamp, field=f"{family}-timestamp")
    except InvalidValue:
        return "bad_signature", f"{family}-timestamp must be Unix seconds"
    tolerance = settings.CLERK_WEBHOOK_TOLERANCE_SECONDS
    if abs(time.time() - sent.timestamp()) > tolerance:
        return (
            "stale_timestamp",
            f"{family}-timestamp is more than {tolerance}s from now: a late replay or a wrong "
            "clock",
        )
    try:
        expected = svix_sign(secret, msg_id, timestamp, body).encode()
    except ValueError:
        return "no_secret", "the clerk connection's signing_secret is not a whsec_ secret"
    # Every entry is compared (no early exit), each in constant time.
    matched = False
    for entry in signatures.split():
        matched |= entry.startswith("v1,") and hmac.compare_digest(entry.encode(), expected)
    if not matched:
        return "bad_signature", f"{family}-signature has no v1 signature matching the body"
    return None
