from __future__ import annotations

from django.db import models

from integrations.providers import provider_choices
from tenants.models import Tenant


class IntegrationConnection(models.Model):
    """A tenant's connection to a provider (integrations.providers): settings plus Vault-encrypted
    secrets."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    # Any declared provider (integrations.providers): a new one needs no migration.
    provider = models.CharField(max_length=20, choices=provider_choices)
    # Non-secret settings: shop domain, phone number id, n8n base URL, API version.
    config = models.JSONField(default=dict, blank=True)
    # Access tokens, app secrets, API keys: Vault Transit ciphertext only.
    credentials_ciphertext = models.TextField(blank=True)
    # Provider-side id that maps an inbound webhook to this tenant (shop domain, phone number id).
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider"], name="integration_unique_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.provider}"


class WhatsAppMessage(models.Model):
    """One message of a tenant's WhatsApp conversation with a phone number."""

    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class Status(models.TextChoices):
        """What WhatsApp last reported about a message the business sent."""

        NONE = "", "not reported"
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="whatsapp_messages")
    # The other party: +E.164, or their business-scoped user id (BSUID, up to 134 characters)
    # when WhatsApp withholds the number of a user with a username.
    phone = models.CharField(max_length=140, db_index=True)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    text = models.TextField()  # what a person reads: the text, a button's or reply's title...
    # The message's WhatsApp type (text, button, interactive, image...) and its typed content.
    kind = models.CharField(max_length=20, default="text")
    content = models.JSONField(default=dict, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, blank=True, default="")
    # When WhatsApp says the status happened (its webhook's timestamp).
    status_at = models.DateTimeField(null=True, blank=True)
    # A failed status's errors[], as Meta sent them (code, title, message, error_data).
    status_errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="whatsapp_unique_provider_message",
            )
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.phone}"


class N8nTrigger(models.Model):
    """A subscription: events on a tenant topic start an n8n workflow through its webhook."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="n8n_triggers")
    topic = models.CharField(max_length=100)
    event_type = models.CharField(max_length=200, blank=True, help_text="Empty means every type.")
    webhook_path = models.CharField(max_length=200)
    # The secret every forward sends in the header the workflow's Webhook node checks (Header
    # Auth): Vault Transit ciphertext only. Empty for a trigger made before triggers had one.
    auth_secret_ciphertext = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "topic", "event_type", "webhook_path"], name="n8n_trigger_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}: {self.topic} -> {self.webhook_path}"


class WebhookDelivery(models.Model):
    """A provider delivery already accepted: Shopify's X-Shopify-Webhook-Id, a WhatsApp message
    or status id, an n8n execution id. Inserted in the transaction that queues the delivery's
    events, so a delivery whose first attempt failed leaves no mark and its retry is accepted."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_deliveries")
    provider = models.CharField(max_length=20, choices=provider_choices)
    delivery_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "delivery_id"], name="webhook_delivery_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.provider}/{self.delivery_id}"
