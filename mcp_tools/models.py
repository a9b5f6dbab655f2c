from __future__ import annotations

import uuid

from django.db import models

from tenants.models import Tenant


class UpstreamServer(models.Model):
    """An MCP server a tenant registered, reachable by streamable HTTP or as a stdio command."""

    class Transport(models.TextChoices):
        HTTP = "http"
        STDIO = "stdio"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="upstream_servers")
    name = models.CharField(max_length=64)
    transport = models.CharField(max_length=10, choices=Transport.choices)
    url = models.URLField(max_length=2000, blank=True)
    command = models.CharField(max_length=500, blank=True)
    args = models.JSONField(default=list, blank=True)
    # Headers (HTTP) or environment (stdio), as Vault Transit ciphertext only.
    credentials_ciphertext = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="upstream_unique_tenant_name")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"


class AgentSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agent_sessions")
    label = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.id})"
