from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from tenants.models import Tenant


class UpstreamServer(models.Model):
    """An upstream MCP server of a tenant: an HTTP(S) URL the tenant registered, or a
    platform-defined stdio entry (UPSTREAM_MCP_STDIO_SERVERS) a platform admin enabled for it.
    A tenant never supplies a command."""

    class Transport(models.TextChoices):
        HTTP = "http"
        STDIO = "stdio"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="upstream_servers")
    name = models.CharField(max_length=64)
    transport = models.CharField(max_length=10, choices=Transport.choices, default=Transport.HTTP)
    url = models.URLField(max_length=2000, blank=True)
    # The key of a UPSTREAM_MCP_STDIO_SERVERS entry; set only by platform admins.
    stdio_entry = models.CharField(max_length=64, blank=True)
    # HTTP headers, as Vault Transit ciphertext only.
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


class OAuthGrant(models.Model):
    """One consent given on the console: a person let an OAuth client act for one tenant with
    chosen scopes. Its ApiKey row (never usable as a key: its secret was discarded) carries the
    tenant and scopes exactly as an API key does, lists the grant on the keys page and revokes
    it there. The codes and tokens the client receives for this consent are linked here."""

    api_key = models.OneToOneField(
        "tenants.ApiKey", on_delete=models.CASCADE, related_name="oauth_grant"
    )
    application = models.ForeignKey(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="smarteros_grants"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    code = models.OneToOneField(
        "oauth2_provider.Grant", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    access_tokens: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        "oauth2_provider.AccessToken", related_name="+"
    )
    refresh_tokens: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        "oauth2_provider.RefreshToken", related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.application.client_id} -> {self.api_key}"
