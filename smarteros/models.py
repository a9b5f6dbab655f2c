from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models


class OutboxEvent(models.Model):
    """An event committed with the state change that caused it, waiting for the relay.

    The relay publishes rows in the order their transactions committed (see OutboxCommit), then
    stamps `sent_at`; old sent rows are pruned. A row the broker refuses for its own sake (too
    large, invalid topic) is set aside: `failed_at` and `failure_reason` are stamped, the relay
    skips it, and an operator retries it from the admin once the cause is fixed.
    `payload` is the envelope's JSON exactly as it goes to Kafka (text, not jsonb: PostgreSQL
    neither parses it on the way in nor renders it on the way out; `payload::jsonb` to query).
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    # Not indexed: per-tenant questions are about unsent rows, which outbox_unsent_idx finds;
    # one index less is one write less per event, twice (insert, then marking it sent).
    tenant_id = models.BigIntegerField(null=True, blank=True)
    tenant = models.CharField(max_length=40, blank=True, help_text="The envelope's tenant slug.")
    topic = models.CharField(max_length=249)
    key = models.CharField(max_length=500, blank=True)
    event_type = models.CharField(max_length=200)
    payload = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The writing transaction's id (pg_current_xact_id()), which OutboxCommit orders.
    xid = models.BigIntegerField(default=0)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["xid", "id"],
                name="outbox_pending_idx",
                condition=models.Q(sent_at__isnull=True, failed_at__isnull=True),
            ),
            models.Index(
                fields=["id"],
                name="outbox_set_aside_idx",
                condition=models.Q(sent_at__isnull=True, failed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.topic}"


class OutboxCommit(models.Model):
    """One row per transaction that wrote outbox rows, numbered in commit order.

    The emitting statement inserts the row; a deferred trigger numbers it at commit time under a
    transaction-level advisory lock, so numbers follow commit (and visibility) order exactly, and
    the relay publishes transactions by number: per-key order holds with concurrent writers,
    which row ids (taken at insert) do not give. The relay deletes a row once its transaction's
    events are all out. Written only by SQL (see migration 0005)."""

    xid = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["seq"], name="outbox_commit_seq_idx")]

    def __str__(self) -> str:
        return f"{self.xid}@{self.seq}"


class ProcessedEvent(models.Model):
    """Marks an event id as handled by a consumer group, in the transaction of the handling,
    so a redelivered event (after a crash or a rebalance) changes nothing twice.

    Written for every event every group handles, so it carries only what it needs: the
    (group, event id) key and a BRIN index on the time, for pruning (processed_events_prune).
    """

    pk = models.CompositePrimaryKey("group", "event_id")
    group = models.CharField(max_length=200)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [BrinIndex(fields=["processed_at"], name="processed_event_time_brin")]

    def __str__(self) -> str:
        return f"{self.group}:{self.event_id}"
