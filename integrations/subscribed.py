"""Which tenants' topics the flows read, and what tells the consumers when that changes.

A flow's consumer group reads a tenant's topic only while the tenant has work for it there: a
trigger on the topic (forwarding to n8n), a connection to the provider whose webhooks fill it
(the WhatsApp bot, n8n results). A thousand tenants then cost a group the topics of those that
use it, not every tenant's (librdkafka's per-consumer work grows faster than linearly with the
topics it reads). Every save or delete of what these selectors read (through an operation, the
admin, a tenant's deletion) moves the consumers' directory once it commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save

from integrations.models import IntegrationConnection, N8nTrigger
from tenants.scope import dangerously_unscoped

log = logging.getLogger(__name__)


def _slugs_of(queryset: QuerySet[Any]) -> Callable[[], frozenset[str]]:
    """The slugs of the tenants owning `queryset`'s rows, read afresh across all tenants (by the
    platform's login) at each call."""

    def slugs() -> frozenset[str]:
        with dangerously_unscoped():
            return frozenset(queryset.values_list("tenant__slug", flat=True))

    return slugs


def tenants_with_triggers(topic: str) -> Callable[[], frozenset[str]]:
    """The tenants with an n8n trigger on catalog topic `topic`."""
    return _slugs_of(N8nTrigger.objects.filter(topic=topic))


def tenants_connected(provider: str) -> Callable[[], frozenset[str]]:
    """The tenants connected to `provider` (their webhooks are what fill the flow's topic)."""
    return _slugs_of(IntegrationConnection.objects.filter(provider=provider))


def consumers_told() -> None:
    """Move the consumers' directory: each flow group re-reads its topics within its refresh
    window. Redis away: they see the change at their next full directory read (a minute)."""
    from smarteros.events.subscriptions import subscriptions_changed

    try:
        subscriptions_changed()
    except Exception as exc:
        log.warning("consumers not told of a trigger or connection change: %s", exc)


def _changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if set(kwargs.get("update_fields") or ()) == {"auth_secret_ciphertext"}:
        return  # a trigger's new secret: the same topics
    transaction.on_commit(consumers_told)


def consumers_follow_integrations() -> None:
    """Connect the signals (once, from the app's ready())."""
    for model in (N8nTrigger, IntegrationConnection):
        uid = f"consumers-follow-{model.__name__}"
        post_save.connect(_changed, sender=model, dispatch_uid=uid)
        post_delete.connect(_changed, sender=model, dispatch_uid=uid)
