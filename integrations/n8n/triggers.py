"""The header authentication of n8n triggers: a secret per trigger, kept as Vault ciphertext,
sent with every forward in the header the workflow's Webhook node checks (Header Auth)."""

from __future__ import annotations

import secrets

from integrations.models import N8nTrigger
from tenants.secrets import secret_decrypt, secret_encrypt

# The header name to enter in the n8n Header Auth credential ("Name"); the secret is its "Value".
TRIGGER_AUTH_HEADER = "X-SmarterOS-Trigger-Secret"


def _purpose(trigger: N8nTrigger) -> str:
    # Bound to the trigger: its ciphertext copied onto another trigger does not decrypt.
    return f"n8n_trigger:{trigger.pk}"


def trigger_secret_issue(trigger: N8nTrigger) -> str:
    """Give `trigger` a new secret (replacing any previous one) and return it: the only time it
    is seen in clear outside a forward."""
    secret = secrets.token_urlsafe(32)
    trigger.auth_secret_ciphertext = secret_encrypt(
        slug=trigger.tenant.slug, purpose=_purpose(trigger), value=secret
    )
    trigger.save(update_fields=["auth_secret_ciphertext"])
    return secret


def trigger_auth_headers(trigger: N8nTrigger) -> dict[str, str]:
    """The header a forward to `trigger` carries; none for a trigger made before secrets."""
    if not trigger.auth_secret_ciphertext:
        return {}
    secret = secret_decrypt(
        slug=trigger.tenant.slug,
        purpose=_purpose(trigger),
        ciphertext=trigger.auth_secret_ciphertext,
    )
    return {TRIGGER_AUTH_HEADER: str(secret)}
