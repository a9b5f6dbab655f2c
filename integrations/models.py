from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class IntegrationConnection(models.Model):
    """A tenant's connection to Shopify, WhatsApp or n8n: settings plus Vault-encrypted secrets."""

    class Provider(models.TextChoices):
        SHOPIFY = "shopify"
        WHATSAPP = "whatsapp"
        N8N = "n8n"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=20, choices=Provider.choices)
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
