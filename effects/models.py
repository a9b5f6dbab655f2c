from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenants.models import Tenant

_KEY_NAMESPACE = uuid.UUID("6b1f3c2e-8d4a-4f5e-9a7b-0c1d2e3f4a5b")


class Effect(models.Model):
    """An outside effect (a WhatsApp send, an n8n trigger, a Shopify write) recorded in the same
    transaction as the state that wants it, then performed once after commit."""

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="effects")
    kind = models.CharField(max_length=100, help_text="The effect's declared kind.")
    key = models.CharField(
        max_length=200, help_text="What it is once for: an event id, a message id, a client key."
    )
    payload = models.JSONField(help_text="Its typed payload, as validated when recorded.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    # While pending: not to be taken before this (a worker's lease, or the next retry's time).
    not_before = models.DateTimeField(default=timezone.now)
    trace_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "key"], name="effect_unique_key")
        ]
        indexes = [
            models.Index(
                fields=["not_before"],
                condition=models.Q(state="pending"),
                name="effect_pending_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.state})"

    @property
    def idempotency_key(self) -> str:
        """The key sent to the provider: the same for every attempt at this effect, and distinct
        across tenants, kinds and keys."""
        return str(uuid.uuid5(_KEY_NAMESPACE, f"{self.tenant_id}/{self.kind}/{self.key}"))
