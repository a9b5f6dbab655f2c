from __future__ import annotations

from django.db import models


class OutboxEvent(models.Model):
    """An event committed with the state change that caused it, waiting for the relay.

    The relay publishes rows in id order per key, then stamps `sent_at`; old sent rows are pruned.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    tenant_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    topic = models.CharField(max_length=249)
    key = models.CharField(max_length=500, blank=True)
    event_type = models.CharField(max_length=200)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], name="outbox_unsent_idx", condition=models.Q(sent_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.topic}"


class ProcessedEvent(models.Model):
    """Marks an event id as handled by a consumer group, in the transaction of the handling,
    so a redelivered event (after a crash or a rebalance) changes nothing twice."""

    group = models.CharField(max_length=200)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "event_id"], name="processed_event_unique")
        ]

    def __str__(self) -> str:
        return f"{self.group}:{self.event_id}"
