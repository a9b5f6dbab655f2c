"""The header authentication of n8n triggers: a secret per trigger, kept as Vault ciphertext,
sent with every forward in the header the workflow's Webhook node checks (Header Auth)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from integrations.models import N8nTrigger
from tenants.secrets import secret_decrypt, secret_encrypt

log = logging.getLogger(__name__)

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


def n8n_triggers_changed() -> None:
    """Tell the consumers that the set of topics with triggers changed: the forwarding group
    re-subscribes within its refresh window. Redis away: they see it at their next full
    directory read (a minute)."""
    from smarteros.events.subscriptions import subscriptions_changed

    try:
        subscriptions_changed()
    except Exception as exc:
        log.warning("n8n triggers: consumers not told: %s", exc)


def _trigger_saved_or_deleted(sender: Any, instance: N8nTrigger, **kwargs: Any) -> None:
    if set(kwargs.get("update_fields") or ()) == {"auth_secret_ciphertext"}:
        return  # a new secret: the same topics
    transaction.on_commit(n8n_triggers_changed)


def consumers_follow_triggers() -> None:
    """Every way a trigger is made, changed or removed (the operation, the admin, a tenant's
    deletion) tells the consumers once it commits: the forwarding group reads only topics
    that have a trigger (integrations.handlers)."""
    post_save.connect(_trigger_saved_or_deleted, sender=N8nTrigger, dispatch_uid="n8n-topics")
    post_delete.connect(_trigger_saved_or_deleted, sender=N8nTrigger, dispatch_uid="n8n-topics")
